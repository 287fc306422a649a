//! The access-control hooks of WSGIAccessScript, WSGIAuthUserScript and
//! WSGIAuthGroupScript: the "wsgi" authentication provider (Basic and
//! Digest), the "wsgi-group" authorisation provider (`Require wsgi-group`),
//! and an access checker. Each catches panics and delegates to `crate::access`.

use std::ffi::{CStr, c_char, c_int, c_void};

use super::request::Request;
use super::{ffi, guard, pool};
use crate::access::{Authn, Authz, RealmHash};

static AUTHN_PROVIDER: ffi::authn_provider = ffi::authn_provider { check_password: Some(check_password), get_realm_hash: Some(get_realm_hash) };
static AUTHZ_PROVIDER: ffi::authz_provider = ffi::authz_provider { check_authorization: Some(check_authorization), parse_require_line: None };

pub fn register(p: *mut ffi::apr_pool_t) {
    // SAFETY: provider registration from register_hooks; the provider structs are statics.
    unsafe {
        ffi::ap_register_auth_provider(
            p,
            ffi::AUTHN_PROVIDER_GROUP.as_ptr().cast(),
            c"wsgi".as_ptr(),
            ffi::AUTHN_PROVIDER_VERSION.as_ptr().cast(),
            (&raw const AUTHN_PROVIDER).cast(),
            ffi::AP_AUTH_INTERNAL_PER_CONF as c_int,
        );
        ffi::ap_register_auth_provider(
            p,
            ffi::AUTHZ_PROVIDER_GROUP.as_ptr().cast(),
            c"wsgi-group".as_ptr(),
            ffi::AUTHZ_PROVIDER_VERSION.as_ptr().cast(),
            (&raw const AUTHZ_PROVIDER).cast(),
            ffi::AP_AUTH_INTERNAL_PER_CONF as c_int,
        );
        ffi::ap_hook_access_checker(Some(access_checker), std::ptr::null(), std::ptr::null(), ffi::APR_HOOK_MIDDLE as c_int);
    }
}

fn bytes<'a>(p: *const c_char) -> &'a [u8] {
    // SAFETY: httpd passes NUL-terminated strings that outlive the hook call.
    unsafe { pool::cstr(p) }.map_or(&[], CStr::to_bytes)
}

fn authn_status(result: Authn) -> ffi::authn_status {
    match result {
        Authn::Granted => ffi::authn_status_AUTH_GRANTED,
        Authn::Denied => ffi::authn_status_AUTH_DENIED,
        Authn::UserNotFound => ffi::authn_status_AUTH_USER_NOT_FOUND,
        Authn::Error => ffi::authn_status_AUTH_GENERAL_ERROR,
    }
}

unsafe extern "C" fn check_password(r: *mut ffi::request_rec, user: *const c_char, password: *const c_char) -> ffi::authn_status {
    guard::catch("check_password", || {
        // SAFETY: httpd passes a live request.
        let Some(mut req) = (unsafe { Request::from_raw(r) }) else { return ffi::authn_status_AUTH_GENERAL_ERROR };
        authn_status(crate::access::check_password(&mut req, bytes(user), bytes(password)))
    })
    .unwrap_or(ffi::authn_status_AUTH_GENERAL_ERROR)
}

unsafe extern "C" fn get_realm_hash(r: *mut ffi::request_rec, user: *const c_char, realm: *const c_char, rethash: *mut *mut c_char) -> ffi::authn_status {
    guard::catch("get_realm_hash", || {
        // SAFETY: httpd passes a live request.
        let Some(mut req) = (unsafe { Request::from_raw(r) }) else { return ffi::authn_status_AUTH_GENERAL_ERROR };
        match crate::access::realm_hash(&mut req, bytes(user), bytes(realm)) {
            RealmHash::Found(hash) => {
                // SAFETY: `rethash` is httpd's out-parameter; the copy lives in the request pool.
                unsafe { *rethash = pool::pstrdup(req.pool(), hash.as_bytes()) };
                ffi::authn_status_AUTH_USER_FOUND
            }
            RealmHash::Result(result) => authn_status(result),
        }
    })
    .unwrap_or(ffi::authn_status_AUTH_GENERAL_ERROR)
}

unsafe extern "C" fn check_authorization(r: *mut ffi::request_rec, require_line: *const c_char, _parsed: *const c_void) -> ffi::authz_status {
    guard::catch("check_authorization", || {
        // SAFETY: httpd passes a live request.
        let Some(mut req) = (unsafe { Request::from_raw(r) }) else { return ffi::authz_status_AUTHZ_GENERAL_ERROR };
        match crate::access::check_groups(&mut req, bytes(require_line)) {
            Authz::Granted => ffi::authz_status_AUTHZ_GRANTED,
            Authz::Denied => ffi::authz_status_AUTHZ_DENIED,
            Authz::DeniedNoUser => ffi::authz_status_AUTHZ_DENIED_NO_USER,
            Authz::Error => ffi::authz_status_AUTHZ_GENERAL_ERROR,
        }
    })
    .unwrap_or(ffi::authz_status_AUTHZ_GENERAL_ERROR)
}

unsafe extern "C" fn access_checker(r: *mut ffi::request_rec) -> c_int {
    guard::catch("access_checker", || {
        // SAFETY: httpd passes a live request.
        let Some(mut req) = (unsafe { Request::from_raw(r) }) else { return ffi::DECLINED };
        crate::access::allow_access(&mut req)
    })
    .unwrap_or(ffi::HTTP_INTERNAL_SERVER_ERROR as c_int)
}
