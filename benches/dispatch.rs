//! Signal dispatch: emitting to connected slots, the path every socket
//! event takes. It allocates nothing; this shows what it costs per slot.
//!
//! `cargo bench --bench dispatch` (at the root, or `-p sslsocket-benches`)

use criterion::{criterion_group, criterion_main, Criterion};
use sslsocket::fuzzing::SignalBench;
use sslsocket::Reactor;

fn bench_emit(criterion: &mut Criterion) {
    let mut reactor = Reactor::new().expect("reactor");
    for slots in [0, 1, 4] {
        let mut bench = SignalBench::new(slots);
        criterion.bench_function(&format!("dispatch/emit to {slots} slot(s)"), |b| {
            b.iter(|| bench.emit(&mut reactor, std::hint::black_box(1)));
        });
        assert!(bench.total > 0 || slots == 0);
    }
}

criterion_group!(benches, bench_emit);
criterion_main!(benches);
