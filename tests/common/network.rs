//! A private network namespace for tests whose peer listens on every
//! address (`gnutls-serv` cannot be told otherwise): the test runs itself
//! again in a child process under `unshare --net` (with a user namespace
//! when not root), whose only interface is its own loopback, so nothing
//! outside can reach the peer. [`gnutls_serv`] starts that peer.

use std::os::unix::fs::MetadataExt;
use std::process::Command;
use std::time::{Duration, Instant};

use super::{require, Proc, Spawn, TIMEOUT};

/// The port `gnutls-serv` listens on inside a test's own network namespace
/// (nothing else can be there).
pub const PORT: u16 = 5556;

/// Set in the child that runs one test in a private network namespace.
const PRIVATE_NETWORK: &str = "SSLSOCKET_TEST_PRIVATE_NETWORK";

/// Runs `body` in a private network namespace: here, if this process is
/// already the child made for the test `name`, else in a child process that
/// runs only that test under `unshare --net` with its loopback up.
pub fn in_private_network(name: &str, body: impl FnOnce()) {
    if std::env::var_os(PRIVATE_NETWORK).is_some() {
        let interfaces = std::fs::read_to_string("/proc/self/net/dev").expect("/proc/self/net/dev");
        let names: Vec<&str> = interfaces
            .lines()
            .skip(2)
            .filter_map(|l| l.split(':').next())
            .map(str::trim)
            .collect();
        assert_eq!(names, ["lo"], "not in a private network namespace");
        return body();
    }
    let unshare = require("unshare", "util-linux");
    require("ip", "iproute2");
    let root = std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0);
    let mut command = Command::new(unshare);
    if !root {
        command.args(["--user", "--map-root-user"]);
    }
    command
        .args(["--net", "--"])
        .arg(require("sh", "dash"))
        .arg("-c")
        .arg(r#"ip link set lo up && exec "$0" --exact "$1" --nocapture --test-threads=1"#)
        .arg(std::env::current_exe().expect("current_exe"))
        .arg(name)
        .env(PRIVATE_NETWORK, "1");
    let mut child = Proc::in_own_group("the test in a private network namespace", command);
    let status = child.wait(Duration::from_secs(90));
    let stdout = child.stdout_text();
    let stderr = child.stderr_text();
    assert!(
        status.success() && stdout.contains("test result: ok. 1 passed"),
        "the test {name} in a private network namespace failed ({status})\n\
         stdout:\n{stdout}\nstderr:\n{stderr}"
    );
}

/// Starts `gnutls-serv --echo` on [`PORT`] with `args` (`--udp` for DTLS),
/// once it listens (it says so on stderr).
pub fn gnutls_serv(args: &[&str]) -> Proc {
    let mut server = Spawn::new("gnutls-serv")
        .args(["--echo", "--port", &PORT.to_string()])
        .args(args)
        .null_stdin()
        .start();
    let listening = format!("IPv4 0.0.0.0 port {PORT}...done");
    let deadline = Instant::now() + TIMEOUT;
    while !server.stderr_text().contains(&listening) {
        assert!(
            server.try_wait().is_none() && Instant::now() < deadline,
            "gnutls-serv is not listening\nstdout: {}\nstderr: {}",
            server.stdout_text(),
            server.stderr_text()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    server
}
