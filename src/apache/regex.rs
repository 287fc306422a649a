//! httpd's regular expressions (PCRE), so WSGIScriptAliasMatch reads patterns
//! exactly as AliasMatch does.

use std::ffi::{CString, c_int};

use super::{ffi, pool};

const MAX_GROUPS: usize = 10;

/// A compiled pattern owned by a configuration pool.
pub struct Regex(*mut ffi::ap_regex_t);

// SAFETY: a compiled ap_regex_t is read-only after compilation; regexec keeps
// its match state in the caller's buffer.
unsafe impl Send for Regex {}
unsafe impl Sync for Regex {}

impl Regex {
    /// Compiles `pattern` into `pool`; None when it does not compile.
    pub fn compile(pool: *mut ffi::apr_pool_t, pattern: &str) -> Option<Regex> {
        let pattern = CString::new(pattern).ok()?;
        // SAFETY: ap_pregcomp copies nothing it does not own and registers the
        // compiled pattern's cleanup on `pool`.
        let re = unsafe { ffi::ap_pregcomp(pool, pattern.as_ptr(), 0) };
        (!re.is_null()).then_some(Regex(re))
    }

    /// On a match, returns `replacement` with $0..$9 substituted and the
    /// length of the matched text (the match is anchored where the pattern says).
    pub fn substitute(&self, request_pool: *mut ffi::apr_pool_t, subject: &[u8], replacement: &str) -> Option<(Vec<u8>, usize)> {
        let subject_c = pool::pstrdup(request_pool, subject);
        let mut groups = [ffi::ap_regmatch_t { rm_so: -1, rm_eo: -1 }; MAX_GROUPS];
        // SAFETY: `groups` has MAX_GROUPS slots; subject_c is NUL-terminated.
        let rc = unsafe { ffi::ap_regexec(self.0, subject_c, MAX_GROUPS, groups.as_mut_ptr(), 0) };
        if rc != 0 {
            return None;
        }
        let replacement = CString::new(replacement).ok()?;
        // SAFETY: the same subject and match vector regexec filled in.
        let out = unsafe { ffi::ap_pregsub(request_pool, replacement.as_ptr(), subject_c, MAX_GROUPS, groups.as_mut_ptr()) };
        // SAFETY: NULL or a pool string.
        let out = unsafe { pool::cstr(out) }?.to_bytes().to_vec();
        Some((out, groups[0].rm_eo as c_int as usize))
    }
}
