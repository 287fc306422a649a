//! The APR bucket-brigade ring operations that exist only as C macros.

use super::ffi;

/// Appends `bucket` to `bb` (APR_BRIGADE_INSERT_TAIL).
///
/// # Safety
/// `bb` must be a live brigade and `bucket` a bucket not on any ring.
pub unsafe fn insert_tail(bb: *mut ffi::apr_bucket_brigade, bucket: *mut ffi::apr_bucket) {
    // SAFETY: `link` is the first member of apr_bucket, so the brigade's list
    // head, read as a bucket, is the ring sentinel whose `link` is the head.
    unsafe {
        let sentinel = std::ptr::addr_of_mut!((*bb).list).cast::<ffi::apr_bucket>();
        let last = (*bb).list.prev;
        (*bucket).link.next = sentinel;
        (*bucket).link.prev = last;
        (*last).link.next = bucket;
        (*bb).list.prev = bucket;
    }
}
