//! Stateless handshake codecs: SYN cookies (RFC 4987 §3.6) and TCP Fast Open cookies (RFC 7413).
//!
//! Owns: the encoding and checking of the 32-bit SYN cookie carried in our ISN (and of the
//! options packed into our SYN-ACK's TSval), the server's Fast Open cookie jar, and the client's
//! bounded cache of servers' Fast Open cookies.
//!
//! Promises: pure functions of their inputs and the injected keys: O(1) (the client cache:
//! O(capacity), used once per connection setup), no allocation after construction, no panic on
//! any input. Keys rotate with the previous key still accepted for a bounded time.
//!
//! Must not: hold connection state, read a clock or a random source (`now` and keys are passed
//! in; keys must come from a cryptographic random source), or decide policy (when to use cookies
//! is the engine's choice).

pub mod fastopen;
pub mod syn;

pub use fastopen::{CachedCookie, TfoClientCache, TfoCookieJar};
pub use syn::{
    decode_ts_options, encode_ts_options, CookieError, CookieInfo, CookieOptions, SynCookieKeys, SynCookies,
    MSS_TABLE,
};
