//! APR's MD5, which names script modules as mod_wsgi names them. Python's
//! hashlib would load OpenSSL's libcrypto into every process that loads a
//! script: some 3 MiB resident that the C module, hashing with APR, never has.

use super::ffi;

/// The MD5 digest of `data` in lower-case hex.
pub fn md5_hex(data: &[u8]) -> String {
    let mut digest = [0u8; ffi::APR_MD5_DIGESTSIZE as usize];
    // SAFETY: apr_md5 reads `data.len()` bytes from `data` and writes
    // APR_MD5_DIGESTSIZE bytes to `digest`; it cannot fail.
    unsafe { ffi::apr_md5(digest.as_mut_ptr(), data.as_ptr().cast(), data.len()) };
    hex(&digest)
}

/// `bytes` in lower-case hex.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
