/* The GnuTLS headers sslsocket binds. Regenerate with:
 *   cargo build -p gnutls-sys --features bindgen
 * which rewrites src/bindings.rs. */
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <gnutls/x509-ext.h>
#include <gnutls/abstract.h>
#include <gnutls/pkcs12.h>
#include <gnutls/ocsp.h>
#include <gnutls/crypto.h>
#include <gnutls/dtls.h>
