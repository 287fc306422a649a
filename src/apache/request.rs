//! One httpd request, as the handler and the WSGI layer see it.

use std::ffi::{CStr, c_char, c_int};
use std::io;
use std::ptr::NonNull;

use super::{brigade, ffi, pool};
use crate::python::{Level, RequestIo};

/// A request_rec borrowed for the duration of a handler call.
pub struct Request {
    raw: NonNull<ffi::request_rec>,
    out: *mut ffi::apr_bucket_brigade,
    /// The Content-Length sent, and the body bytes handed to httpd so far:
    /// the body is cut there, and one that falls short closes the connection.
    declared: Option<u64>,
    sent: u64,
}

// SAFETY: httpd runs a request on one thread; the WSGI layer only touches the
// request through a mutex while the handler thread waits in the WSGI call.
unsafe impl Send for Request {}

/// A response write that httpd's output filters refused: the client went
/// away, or a write to it timed out.
#[derive(Debug)]
pub struct ClientWriteError {
    /// The APR status of the failed pass (0: the connection was found aborted).
    pub status: i32,
}

impl std::fmt::Display for ClientWriteError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.status == ffi::APR_TIMEUP as i32 {
            f.write_str("timed out writing to the client")
        } else if self.status == ffi::AP_FILTER_ERROR {
            f.write_str("an output filter refused the response and answered with an error")
        } else {
            f.write_str("client connection closed")
        }
    }
}

impl std::error::Error for ClientWriteError {}

impl ClientWriteError {
    /// The APR status behind a failed write, when it came from httpd's filters.
    pub fn status_of(err: &io::Error) -> i32 {
        err.get_ref().and_then(|e| e.downcast_ref::<ClientWriteError>()).map_or(0, |e| e.status)
    }
}

/// A status line or header as it goes on the wire: PEP 3333's native
/// strings hold latin-1, one byte per character. None for a character above
/// U+00FF, which start_response refuses, so only a misbehaving daemon sends.
pub fn latin1(text: &str) -> Option<std::borrow::Cow<'_, [u8]>> {
    if text.is_ascii() {
        return Some(std::borrow::Cow::Borrowed(text.as_bytes()));
    }
    text.chars().map(|c| u8::try_from(c).ok()).collect::<Option<Vec<u8>>>().map(std::borrow::Cow::Owned)
}

/// A response head holding a character latin-1 cannot carry.
#[derive(Debug)]
pub struct NotLatin1(pub String);

impl std::fmt::Display for NotLatin1 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?} holds characters beyond latin-1", self.0)
    }
}

impl std::error::Error for NotLatin1 {}

/// What the filesystem said about r->filename.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum FileKind {
    Missing,
    Regular,
    Directory,
    Other,
}

impl Request {
    /// # Safety
    /// `r` must be a live request that outlives the returned value.
    pub unsafe fn from_raw(r: *mut ffi::request_rec) -> Option<Self> {
        NonNull::new(r).map(|raw| Request { raw, out: std::ptr::null_mut(), declared: None, sent: 0 })
    }

    /// A second handle on this request for the WSGI layer, which uses it only
    /// while the handler waits for the WSGI call to return.
    pub fn handle_for_wsgi(&self) -> Request {
        Request { raw: self.raw, out: std::ptr::null_mut(), declared: None, sent: 0 }
    }

    pub fn as_ptr(&self) -> *mut ffi::request_rec {
        self.raw.as_ptr()
    }

    fn rec(&self) -> &ffi::request_rec {
        // SAFETY: `raw` is live for our lifetime (from_raw's contract).
        unsafe { self.raw.as_ref() }
    }

    pub fn pool(&self) -> *mut ffi::apr_pool_t {
        self.rec().pool
    }

    fn str_field(&self, p: *const c_char) -> &[u8] {
        // SAFETY: request_rec string fields are NULL or pool strings outliving the request.
        unsafe { pool::cstr(p) }.map_or(&[], CStr::to_bytes)
    }

    pub fn handler(&self) -> &[u8] {
        self.str_field(self.rec().handler)
    }
    pub fn uri(&self) -> &[u8] {
        self.str_field(self.rec().uri)
    }
    pub fn filename(&self) -> &[u8] {
        self.str_field(self.rec().filename)
    }
    pub fn server_hostname(&self) -> &[u8] {
        // SAFETY: r->server is always set and lives as long as the configuration.
        self.str_field(unsafe { (*self.rec().server).server_hostname })
    }
    /// When the request arrived (microseconds since the epoch).
    pub fn request_time(&self) -> i64 {
        self.rec().request_time
    }

    /// The request's log id (as in `%L` log formats), made on first use.
    pub fn log_id(&self) -> String {
        let r = self.raw.as_ptr();
        // SAFETY: the generate_log_id hook stores a pool string in `id`.
        unsafe {
            if (*r).log_id.is_null() {
                let mut id: *const c_char = std::ptr::null();
                ffi::ap_run_generate_log_id((*r).connection, r, &mut id);
                (*r).log_id = id;
            }
        }
        String::from_utf8_lossy(self.str_field(self.rec().log_id)).into_owned()
    }

    /// The server's Timeout, in microseconds.
    pub fn server_timeout_micros(&self) -> i64 {
        // SAFETY: r->server is always set.
        unsafe { (*self.rec().server).timeout }
    }

    /// What went wrong when reading the body failed (httpd has already
    /// answered the client, if it is still there).
    pub fn body_read_failure(&self) -> String {
        let r = self.rec();
        let read = r.read_length;
        if r.read_chunked != 0 {
            format!("the client went away, or sent a malformed chunk, after {read} bytes")
        } else if r.remaining > 0 {
            // httpd sets `remaining` to the declared length and leaves it there.
            format!("the client went away after {read} of {} bytes", r.remaining)
        } else {
            format!("the read failed after {read} bytes")
        }
    }

    /// Whether body bytes may still come: the client announced a body (a
    /// length or chunked encoding) and its end has not been read. (httpd
    /// sets `remaining` to 0, or -1 for a chunked body, on reading the end.)
    pub fn has_body(&self) -> bool {
        let r = self.rec();
        r.remaining > 0 || (r.read_chunked != 0 && r.remaining == 0)
    }

    /// Reads request-body bytes into an initialised buffer; Ok(0) at the end.
    pub fn read_body_bytes(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        // SAFETY: read_body only writes bytes into the buffer, so viewing
        // initialised memory as MaybeUninit for the call is sound.
        let uninit = unsafe { &mut *(buf as *mut [u8] as *mut [std::mem::MaybeUninit<u8>]) };
        self.read_body(uninit)
    }

    /// The local address the connection arrived on.
    pub fn local_ip(&self) -> &[u8] {
        // SAFETY: r->connection is always set; local_ip is a pool string.
        self.str_field(unsafe { (*self.rec().connection).local_ip })
    }

    /// The host the client asked for (r->hostname), if any.
    pub fn hostname(&self) -> Option<&[u8]> {
        Some(self.str_field(self.rec().hostname)).filter(|h| !h.is_empty())
    }
    pub fn server(&self) -> *mut ffi::server_rec {
        self.rec().server
    }

    /// The port the request arrived on (ap_get_server_port's view).
    pub fn server_port(&self) -> u16 {
        // SAFETY: plain accessor over a live request.
        unsafe { ffi::ap_get_server_port(self.raw.as_ptr()) }
    }

    pub fn file_kind(&self) -> FileKind {
        match self.rec().finfo.filetype {
            ffi::apr_filetype_e_APR_NOFILE => FileKind::Missing,
            ffi::apr_filetype_e_APR_REG => FileKind::Regular,
            ffi::apr_filetype_e_APR_DIR => FileKind::Directory,
            _ => FileKind::Other,
        }
    }

    /// Modification time of r->filename, in microseconds.
    pub fn mtime(&self) -> i64 {
        self.rec().finfo.mtime
    }

    pub fn allows_exec_cgi(&self) -> bool {
        // SAFETY: plain accessor over a live request.
        (unsafe { ffi::ap_allow_options(self.raw.as_ptr()) } as u32 & ffi::OPT_EXECCGI) != 0
    }

    pub fn method(&self) -> &[u8] {
        self.str_field(self.rec().method)
    }

    pub fn set_handler(&mut self, name: &'static CStr) {
        // SAFETY: a static string outlives the request.
        unsafe { (*self.raw.as_ptr()).handler = name.as_ptr() };
    }

    pub fn set_filename(&mut self, path: &[u8]) {
        let copy = pool::pstrdup(self.pool(), path);
        // SAFETY: the copy lives in the request pool.
        unsafe { (*self.raw.as_ptr()).filename = copy };
    }

    /// Per-request module state (r->request_config).
    pub fn module_note<T>(&self) -> Option<&T> {
        // SAFETY: our slot holds NULL or a pointer set by set_module_note::<T>.
        unsafe {
            let p = ffi::ap_get_module_config(self.rec().request_config, std::ptr::addr_of!(crate::wsgi_module));
            (p as *const T).as_ref()
        }
    }

    /// Stores a pointer to data that outlives the request (configuration).
    pub fn set_module_note<T>(&mut self, value: &'static T) {
        // SAFETY: request_config is a per-request vector sized for every module.
        unsafe {
            ffi::ap_set_module_config(self.rec().request_config, std::ptr::addr_of!(crate::wsgi_module), value as *const T as *mut _);
        }
    }

    pub fn per_dir_config(&self) -> *mut ffi::ap_conf_vector_t {
        self.rec().per_dir_config
    }

    /// Fills r->subprocess_env the way CGI does and returns it as pairs borrowed from the request pool.
    pub fn cgi_variables(&self) -> Vec<(&[u8], &[u8])> {
        // SAFETY: httpd's own CGI helpers; they write into r->subprocess_env.
        unsafe {
            ffi::ap_add_common_vars(self.raw.as_ptr());
            ffi::ap_add_cgi_vars(self.raw.as_ptr());
        }
        self.table(self.rec().subprocess_env)
    }

    /// The variables an access-control script sees: httpd's common CGI
    /// variables plus the request line's, without the sub-request that
    /// PATH_TRANSLATED would take (the request is still being authorised).
    pub fn auth_variables(&self) -> Vec<(&[u8], &[u8])> {
        let r = self.raw.as_ptr();
        let rec = self.rec();
        let path_info = self.str_field(rec.path_info);
        let uri = self.uri();
        let script_name = uri.strip_suffix(path_info).unwrap_or(uri);
        let extra: [(&CStr, &[u8]); 6] = [
            (c"SERVER_PROTOCOL", self.str_field(rec.protocol)),
            (c"REQUEST_METHOD", self.method()),
            (c"QUERY_STRING", self.str_field(rec.args)),
            (c"REQUEST_URI", self.str_field(rec.unparsed_uri)),
            (c"SCRIPT_NAME", script_name),
            (c"PATH_INFO", path_info),
        ];
        // SAFETY: httpd's helper writes into r->subprocess_env; apr_table_set
        // copies the key and value into the table's pool.
        unsafe {
            ffi::ap_add_common_vars(r);
            for (name, value) in extra {
                let value = pool::pstrdup(self.pool(), value);
                ffi::apr_table_set(rec.subprocess_env, name.as_ptr(), value);
            }
        }
        self.table(rec.subprocess_env).into_iter().filter(|(k, _)| *k != b"PATH").collect()
    }

    /// The authenticated user (r->user), once authentication has run.
    pub fn user(&self) -> Option<&[u8]> {
        let user = self.rec().user;
        (!user.is_null()).then(|| self.str_field(user))
    }

    /// Renames the authenticated user (an auth script may answer with a name).
    pub fn set_user(&mut self, name: &[u8]) {
        let copy = pool::pstrdup(self.pool(), name);
        // SAFETY: the copy lives in the request pool, as r->user must.
        unsafe { (*self.raw.as_ptr()).user = copy };
    }

    /// The client's address (r->useragent_ip).
    pub fn client_ip(&self) -> &[u8] {
        self.str_field(self.rec().useragent_ip)
    }

    fn table(&self, t: *mut ffi::apr_table_t) -> Vec<(&[u8], &[u8])> {
        // SAFETY: an apr_table_t is an array of apr_table_entry_t whose key/val
        // are pool strings (val may be NULL); the table outlives the borrow.
        unsafe {
            let arr = &*ffi::apr_table_elts(t);
            let entries = std::slice::from_raw_parts(arr.elts as *const ffi::apr_table_entry_t, arr.nelts as usize);
            // Room for the few variables the handler adds (complete_cgi).
            let mut pairs = Vec::with_capacity(entries.len() + 8);
            pairs.extend(entries.iter().filter_map(|e| Some((pool::cstr(e.key)?.to_bytes(), pool::cstr(e.val).map_or(&[][..], CStr::to_bytes)))));
            pairs
        }
    }

    /// The request's header lines, in the order they came, repeats kept.
    pub fn headers_in(&self) -> Vec<(&[u8], &[u8])> {
        self.table(self.rec().headers_in)
    }

    /// The value of a request header.
    pub fn header_in(&self, name: &CStr) -> Option<&[u8]> {
        // SAFETY: apr_table_get returns NULL or a pool string.
        unsafe { pool::cstr(ffi::apr_table_get(self.rec().headers_in, name.as_ptr())) }.map(CStr::to_bytes)
    }

    /// Prepares reading the body; Err is the HTTP status to answer with (411, 501, 413).
    pub fn setup_body(&self, allow_chunked: bool) -> Result<(), c_int> {
        let policy = if allow_chunked { ffi::REQUEST_CHUNKED_DECHUNK } else { ffi::REQUEST_CHUNKED_ERROR };
        // SAFETY: called once, before any body read, from the handler.
        let status = unsafe { ffi::ap_setup_client_block(self.raw.as_ptr(), policy as c_int) };
        if status != ffi::OK as c_int {
            return Err(status);
        }
        // SAFETY: as above; sends "100 Continue" when the client asked for it.
        unsafe { ffi::ap_should_client_block(self.raw.as_ptr()) };
        Ok(())
    }

    fn output_brigade(&mut self) -> *mut ffi::apr_bucket_brigade {
        if self.out.is_null() {
            // SAFETY: a brigade in the request pool on the connection's allocator.
            self.out = unsafe { ffi::apr_brigade_create(self.pool(), (*self.rec().connection).bucket_alloc) };
        }
        self.out
    }

    fn bucket_alloc(&self) -> *mut ffi::apr_bucket_alloc_t {
        // SAFETY: r->connection is always set.
        unsafe { (*self.rec().connection).bucket_alloc }
    }

    fn aborted(&self) -> bool {
        // SAFETY: r->connection is always set.
        unsafe { (*self.rec().connection).aborted != 0 }
    }

    /// Hands the brigade to the output filters and empties it.
    fn pass(&mut self) -> io::Result<()> {
        let bb = self.output_brigade();
        // SAFETY: the brigade was built on this request; filters consume or set aside its buckets.
        let status = unsafe {
            let rv = ffi::ap_pass_brigade((*self.raw.as_ptr()).output_filters, bb);
            ffi::apr_brigade_cleanup(bb.cast());
            rv
        };
        if status != 0 || self.aborted() {
            return Err(io::Error::new(io::ErrorKind::BrokenPipe, ClientWriteError { status }));
        }
        Ok(())
    }

    /// Has Apache serve `location` (a local path, perhaps with a query) in
    /// place of this request, as a GET without a body: a CGI local redirect.
    pub fn internal_redirect_as_get(&mut self, location: &str) {
        // The header's characters are latin-1, as on the wire.
        let location = latin1(location).unwrap_or(std::borrow::Cow::Borrowed(location.as_bytes()));
        let pool = self.pool();
        let r = self.raw.as_ptr();
        // SAFETY: the method is a static string and the location is copied
        // into the request pool; httpd runs the redirect on this thread.
        unsafe {
            (*r).method = c"GET".as_ptr();
            (*r).method_number = ffi::M_GET as c_int;
            ffi::apr_table_unset((*r).headers_in, c"Content-Length".as_ptr());
            ffi::ap_internal_redirect_handler(pool::pstrdup(pool, &location), r);
        }
    }

    /// The client connection's socket, to watch for the client going while
    /// a response is awaited; None for a connection without a socket of its
    /// own (an HTTP/2 stream's).
    pub fn client_socket_fd(&self) -> Option<std::os::fd::RawFd> {
        // SAFETY: r->connection is always set; its socket belongs to this
        // request's thread while the handler runs, and outlives the request.
        unsafe {
            let connection = self.rec().connection;
            if !(*connection).master.is_null() {
                return None;
            }
            let socket = ffi::ap_get_conn_socket(connection);
            if socket.is_null() {
                return None;
            }
            let mut fd: ffi::apr_os_sock_t = -1;
            (ffi::apr_os_sock_get(&mut fd, socket) == 0 && fd >= 0).then_some(fd)
        }
    }

    /// Sets the timeout that bounds each write to the client, returning the
    /// one the connection had (microseconds, as APR counts them).
    pub fn swap_client_timeout(&self, micros: i64) -> Option<i64> {
        // SAFETY: r->connection is always set; its socket belongs to this
        // request's thread while the handler runs.
        unsafe {
            let socket = ffi::ap_get_conn_socket(self.rec().connection);
            if socket.is_null() {
                return None;
            }
            let mut previous: ffi::apr_interval_time_t = 0;
            (ffi::apr_socket_timeout_get(socket, &mut previous) == 0 && ffi::apr_socket_timeout_set(socket, micros) == 0).then_some(previous)
        }
    }

    fn append(&mut self, make: impl FnOnce(*mut ffi::apr_bucket_alloc_t) -> *mut ffi::apr_bucket) {
        let bb = self.output_brigade();
        let bucket = make(self.bucket_alloc());
        // SAFETY: a fresh bucket from the brigade's own allocator.
        unsafe { brigade::insert_tail(bb, bucket) };
    }

    /// Whether the response has been ended, on a connection still open: by
    /// us, or by httpd when an output filter refused what it was given (as
    /// the HTTP header filter refuses a header name that is not a token) and
    /// sent an error response in its place. Aborting the connection now
    /// would only discard what is on its way.
    pub fn response_ended(&self) -> bool {
        self.rec().eos_sent != 0 && !self.aborted()
    }

    /// How many of `len` more body bytes fit in the declared Content-Length.
    fn admit(&mut self, len: u64) -> u64 {
        let n = self.declared.map_or(len, |declared| len.min(declared.saturating_sub(self.sent)));
        self.sent += n;
        n
    }

    /// Whether the body ends short of its Content-Length: the client would
    /// wait for the rest, or read the next response as part of this one.
    fn falls_short(&self) -> bool {
        let r = self.rec();
        let bodiless = r.header_only != 0 || r.status < 200 || r.status == ffi::HTTP_NO_CONTENT as c_int || r.status == ffi::HTTP_NOT_MODIFIED as c_int;
        !bodiless && self.declared.is_some_and(|declared| self.sent < declared)
    }

    /// Ends the response with what the brigade holds. A body short of its
    /// Content-Length closes the connection once it is sent; set before the
    /// headers go, it also makes them say `Connection: close`.
    fn end(&mut self) -> io::Result<()> {
        if self.falls_short() {
            // SAFETY: r->connection is always set; only this thread writes it now.
            unsafe { (*self.rec().connection).keepalive = ffi::ap_conn_keepalive_e_AP_CONN_CLOSE };
        }
        // Flush before the end: the response reaches the client while this
        // thread still holds the connection, so a keep-alive client's next
        // request is usually already there when Apache looks for it, and the
        // connection skips a round through the MPM's poller.
        // SAFETY: a new flush bucket on the connection's allocator.
        self.append(|list| unsafe { ffi::apr_bucket_flush_create(list) });
        // SAFETY: a new EOS bucket on the connection's allocator.
        self.append(|list| unsafe { ffi::apr_bucket_eos_create(list) });
        self.pass()
    }

    /// Cuts the response short: what was passed on so far (the head and the
    /// body up to here) goes out to the client, then the connection is
    /// marked broken, so httpd sends nothing more on it (no final chunk)
    /// and closes it, and the client can tell the response failed.
    pub fn abort_connection(&mut self) {
        // SAFETY: a new flush bucket on the connection's allocator.
        self.append(|list| unsafe { ffi::apr_bucket_flush_create(list) });
        // The client may be gone already: nothing more to do then.
        let _ = self.pass();
        // SAFETY: r->connection is always set; only this thread writes it now.
        unsafe {
            let c = (*self.raw.as_ptr()).connection;
            (*c).keepalive = ffi::ap_conn_keepalive_e_AP_CONN_CLOSE;
            (*c).aborted = 1;
        }
    }
}

impl RequestIo for Request {
    fn read_body(&mut self, buf: &mut [std::mem::MaybeUninit<u8>]) -> io::Result<usize> {
        // SAFETY: writes at most buf.len() bytes into buf and returns how many.
        let n = unsafe { ffi::ap_get_client_block(self.raw.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
        if n < 0 {
            return Err(io::Error::other(self.body_read_failure()));
        }
        Ok(n as usize)
    }

    fn send_headers(&mut self, status: u16, status_line: &str, headers: &[(String, String)]) -> io::Result<()> {
        // Checked before anything is stored, so a head that cannot go out
        // leaves the request as it was.
        if let Some(text) = std::iter::once(status_line).chain(headers.iter().flat_map(|(n, v)| [n.as_str(), v.as_str()])).find(|t| latin1(t).is_none()) {
            return Err(io::Error::new(io::ErrorKind::InvalidData, NotLatin1(text.to_owned())));
        }
        // A length httpd cannot frame the body by never goes out.
        if let Some((_, value)) = headers.iter().find(|(name, value)| name.eq_ignore_ascii_case("content-length") && crate::python::parse_content_length(value).is_none()) {
            return Err(io::Error::new(io::ErrorKind::InvalidData, format!("invalid Content-Length '{value}'")));
        }
        let pool = self.pool();
        let copy = |text: &str| pool::pstrdup(pool, &latin1(text).unwrap_or_default());
        let r = self.raw.as_ptr();
        // SAFETY: every string stored in the request is first copied into its pool.
        unsafe {
            (*r).status = status as c_int;
            (*r).status_line = copy(status_line);
            for (name, value) in headers {
                let v = copy(value);
                if name.eq_ignore_ascii_case("content-type") {
                    ffi::ap_set_content_type(r, v);
                } else if name.eq_ignore_ascii_case("content-length") {
                    // Checked above.
                    let n = crate::python::parse_content_length(value).unwrap_or_default();
                    ffi::ap_set_content_length(r, n as ffi::apr_off_t);
                    self.declared = Some(n);
                } else {
                    let table = if name.eq_ignore_ascii_case("www-authenticate") { (*r).err_headers_out } else { (*r).headers_out };
                    ffi::apr_table_addn(table, copy(name), v);
                }
            }
        }
        Ok(())
    }

    fn write_body(&mut self, data: &[u8], flush: bool) -> io::Result<()> {
        if data.is_empty() && !flush {
            // An empty pass would send the head with the body still open,
            // committing the response to chunked encoding; left for finish(),
            // an empty body goes out with Content-Length: 0.
            return Ok(());
        }
        let data = &data[..self.admit(data.len() as u64) as usize];
        if !data.is_empty() {
            // SAFETY: the transient bucket points at `data`, which outlives the
            // pass below; filters that keep it past the call copy it (setaside).
            self.append(|list| unsafe { ffi::apr_bucket_transient_create(data.as_ptr().cast(), data.len(), list) });
        }
        if flush {
            // SAFETY: a new flush bucket on the connection's allocator.
            self.append(|list| unsafe { ffi::apr_bucket_flush_create(list) });
        }
        self.pass()
    }

    fn send_file(&mut self, file: std::os::fd::BorrowedFd<'_>, offset: u64, len: u64) -> io::Result<()> {
        let len = self.admit(len);
        if len == 0 {
            return Ok(());
        }
        // Our own descriptor, closed with the request pool, so the caller's file may close any time.
        // SAFETY: dup of a descriptor the caller holds open.
        let own = unsafe { libc::dup(std::os::fd::AsRawFd::as_raw_fd(&file)) };
        if own < 0 {
            return Err(io::Error::last_os_error());
        }
        let pool = self.pool();
        let mut file: *mut ffi::apr_file_t = std::ptr::null_mut();
        let mut os_fd = own;
        // SAFETY: wraps `own` in an apr_file_t, then registers a cleanup closing it.
        unsafe {
            ffi::apr_os_file_put(&mut file, &mut os_fd, (ffi::APR_FOPEN_READ | ffi::APR_FOPEN_SENDFILE_ENABLED) as i32, pool);
            pool::attach(pool, OwnedFd(own));
            ffi::apr_brigade_insert_file(self.output_brigade(), file, offset as ffi::apr_off_t, len as ffi::apr_off_t, pool);
        }
        // Passed by `finish`, with the end of the response (see the trait).
        Ok(())
    }

    fn finish(&mut self) -> io::Result<()> {
        self.end()
    }

    fn log(&self, level: Level, msg: &str) {
        super::log::request(self.raw.as_ptr(), level, msg);
    }
}

/// A descriptor closed when dropped (with the pool that owns it).
struct OwnedFd(i32);

impl Drop for OwnedFd {
    fn drop(&mut self) {
        // SAFETY: we own this descriptor (a dup made for one response).
        unsafe { libc::close(self.0) };
    }
}

impl Request {
    /// Whether resource or content filters (beyond the protocol's) will see the body.
    pub fn has_content_filters(&self) -> bool {
        self.rec().output_filters != self.rec().proto_output_filters
    }

    pub fn log_error(&self, msg: &str) {
        super::log::request(self.as_ptr(), Level::Error, msg);
    }

    /// Logs an error with the OS error `errno` in httpd's "(N)text: " form.
    pub fn log_os_error(&self, errno: i32, msg: &str) {
        super::log::request_with_status(self.as_ptr(), Level::Error, errno, msg);
    }

    pub fn log_info(&self, msg: &str) {
        super::log::request(self.as_ptr(), Level::Info, msg);
    }
}

#[cfg(test)]
mod tests {
    use super::latin1;

    #[test]
    fn native_strings_go_out_one_byte_per_character() {
        assert_eq!(latin1("200 OK").as_deref(), Some(&b"200 OK"[..]));
        assert_eq!(latin1("caf\u{e9}").as_deref(), Some(&b"caf\xe9"[..]));
        assert_eq!(latin1("\u{0}\u{ff}").as_deref(), Some(&b"\x00\xff"[..]));
        assert_eq!(latin1(""), Some(Default::default()));
    }

    #[test]
    fn characters_beyond_latin1_have_no_bytes() {
        assert_eq!(latin1("\u{100}"), None);
        assert_eq!(latin1("caf\u{e9} \u{20ac}"), None);
    }
}
