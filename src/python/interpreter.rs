//! Starting and stopping Python in a process, and entering it from any thread.
//!
//! Python is started after fork (in each Apache child), never in the parent.
//! Each thread that runs Python gets one thread state, made on its first call
//! and kept for the life of the process: creating one per request would cost
//! time and wipe `threading.local` data between requests.

use std::cell::Cell;
use std::ffi::CString;
use std::sync::atomic::{AtomicBool, AtomicPtr, Ordering};

use pyo3::ffi;
use pyo3::prelude::*;

use super::log_stream::{LogStream, RestrictedStream};
use super::{Level, server_log};

/// The interpreter executable the module was built against; sys.executable
/// should name it rather than the Apache binary.
const PYTHON_EXECUTABLE: &str = env!("MOD_WSGI_PYTHON_EXECUTABLE");

/// How Python is set up in a process.
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// WSGIPythonHome / python-home=.
    pub home: Option<String>,
    /// WSGIPythonPath / python-path=: added with site.addsitedir().
    pub path: Vec<String>,
    /// WSGIPythonOptimize.
    pub optimize: i32,
    /// WSGIPythonHashSeed with a number (0 turns hash randomisation off).
    pub hash_seed: Option<u32>,
    /// WSGIPythonWarnings: -W options, in order.
    pub warnings: Vec<String>,
    /// WSGIDontWriteBytecode On.
    pub dont_write_bytecode: bool,
    /// WSGIPythonEggs / python-eggs=: PYTHON_EGG_CACHE.
    pub eggs: Option<String>,
    pub restrict_stdout: bool,
    pub restrict_stdin: bool,
    /// WSGIRestrictSignal: `signal.signal()` is intercepted.
    pub restrict_signal: bool,
    /// Script module names hash the script's path in lower case.
    pub fold_script_paths: bool,
    /// A daemon's home=: put first on sys.path, as the script's directory would be.
    pub home_on_path: Option<String>,
    /// Variables set in the process environment before Python reads it into
    /// os.environ (a daemon's HOME, LANG, LC_ALL).
    pub environment: Vec<(String, String)>,
    /// locale=: the C library's locale, which Python takes at start.
    pub locale: Option<String>,
    /// What the `mod_wsgi` module tells applications about this process.
    pub process_group: String,
    pub maximum_processes: u32,
    pub threads_per_process: u32,
}

static STARTED: AtomicBool = AtomicBool::new(false);
/// The starting thread's state, released after start-up and taken back to stop.
static MAIN_THREAD_STATE: AtomicPtr<ffi::PyThreadState> = AtomicPtr::new(std::ptr::null_mut());

thread_local! {
    static THREAD_STATE: Cell<*mut ffi::PyThreadState> = const { Cell::new(std::ptr::null_mut()) };
}

pub fn is_started() -> bool {
    STARTED.load(Ordering::Acquire)
}

/// Initialises Python in this process and releases the GIL.
pub fn start(options: &Options) -> Result<(), String> {
    if is_started() {
        return Ok(());
    }
    server_log(Level::Info, &format!("mod_wsgi (pid={}): Initializing Python.", std::process::id()));
    for (name, value) in &options.environment {
        // SAFETY: Python is started before the process runs threads of its
        // own (a daemon's workers come later), so nothing reads the
        // environment concurrently.
        unsafe { std::env::set_var(name, value) };
    }
    if let Some(locale) = options.locale.as_deref().and_then(|l| CString::new(l).ok()) {
        // SAFETY: as above; setlocale copies the name.
        unsafe { libc::setlocale(libc::LC_ALL, locale.as_ptr()) };
    }
    super::events::process_started();
    // SAFETY: PyConfig is plain data initialised by PyConfig_InitPythonConfig and
    // released by PyConfig_Clear; strings passed are NUL-terminated and copied.
    unsafe {
        // Python runs in the locale Apache was started with (Debian's
        // envvars give LANG=C), as under the C module: no C.UTF-8 coercion
        // (which would also put LC_CTYPE into os.environ) and no UTF-8 mode.
        // lang= / locale= of a daemon group, or Apache's own LANG, choose.
        let mut pre = std::mem::MaybeUninit::<ffi::PyPreConfig>::zeroed();
        ffi::PyPreConfig_InitPythonConfig(pre.as_mut_ptr());
        let pre = pre.assume_init_mut();
        pre.coerce_c_locale = 0;
        pre.utf8_mode = 0;
        let status = ffi::Py_PreInitialize(pre);
        if ffi::PyStatus_Exception(status) != 0 {
            return Err("Python failed to pre-initialise".into());
        }
        let mut config = std::mem::MaybeUninit::<ffi::PyConfig>::zeroed();
        ffi::PyConfig_InitPythonConfig(config.as_mut_ptr());
        let config = config.assume_init_mut();
        config.install_signal_handlers = 0;
        config.parse_argv = 0;
        config.optimization_level = options.optimize;
        if let Some(seed) = options.hash_seed {
            config.use_hash_seed = 1;
            config.hash_seed = seed.into();
        }
        config.write_bytecode = i32::from(!options.dont_write_bytecode);
        let (program, home) = locate(options.home.as_deref());
        let program = CString::new(program).map_err(|_| "WSGIPythonHome contains a NUL byte")?;
        let argv0 = c"mod_wsgi";
        let mut argv = [argv0.as_ptr()];
        let mut status = ffi::PyConfig_SetBytesString(config, &mut config.program_name, program.as_ptr());
        if ffi::PyStatus_Exception(status) == 0 {
            status = ffi::PyConfig_SetBytesArgv(config, 1, argv.as_mut_ptr());
        }
        if ffi::PyStatus_Exception(status) == 0
            && let Some(home) = home
        {
            let home = CString::new(home).map_err(|_| "WSGIPythonHome contains a NUL byte")?;
            status = ffi::PyConfig_SetBytesString(config, &mut config.home, home.as_ptr());
        }
        for option in &options.warnings {
            if ffi::PyStatus_Exception(status) != 0 {
                break;
            }
            let wide: Vec<libc::wchar_t> = option.chars().map(|c| c as libc::wchar_t).chain(std::iter::once(0)).collect();
            status = ffi::PyWideStringList_Append(&mut config.warnoptions, wide.as_ptr());
        }
        if ffi::PyStatus_Exception(status) == 0 {
            status = ffi::Py_InitializeFromConfig(config);
        }
        ffi::PyConfig_Clear(config);
        if ffi::PyStatus_Exception(status) != 0 {
            let msg = if status.err_msg.is_null() {
                "unknown error".into()
            } else {
                std::ffi::CStr::from_ptr(status.err_msg).to_string_lossy().into_owned()
            };
            return Err(format!("Python failed to initialise: {msg}"));
        }
    }
    STARTED.store(true, Ordering::Release);
    let _ = OPTIONS.set(options.clone());
    let setup = Python::attach(|py| {
        if let Some(eggs) = &options.eggs {
            // Through os.environ, so the process environment and every interpreter made later see it.
            let set = py.import("os").and_then(|os| os.getattr("environ")).and_then(|env| env.set_item("PYTHON_EGG_CACHE", eggs));
            set.map_err(|e| describe(py, &e))?;
        }
        // threading takes the thread that first imports it for the main
        // thread: let that be this one, not whichever request comes first.
        py.import("threading").map_err(|e| describe(py, &e))?;
        server_log(Level::Info, &format!("mod_wsgi (pid={}): Attach interpreter ''.", std::process::id()));
        configure_interpreter(py, "")
    });
    // SAFETY: the GIL is held by this thread since Py_InitializeFromConfig.
    MAIN_THREAD_STATE.store(unsafe { ffi::PyEval_SaveThread() }, Ordering::Release);
    setup
}

/// The program name and home to start Python with. A virtual environment
/// (a directory with pyvenv.cfg) is not a Python home: Python finds it, and
/// the installation it was made from, through the pyvenv.cfg beside its
/// own interpreter, so the program becomes the environment's bin/python3.
fn locate(home: Option<&str>) -> (String, Option<String>) {
    match home {
        Some(home) if std::path::Path::new(home).join("pyvenv.cfg").is_file() => {
            let bin = std::path::Path::new(home).join("bin");
            let program = ["python3", "python"].iter().map(|p| bin.join(p)).find(|p| p.exists()).unwrap_or_else(|| bin.join("python3"));
            (program.to_string_lossy().into_owned(), None)
        }
        Some(home) => (PYTHON_EXECUTABLE.to_owned(), Some(home.to_owned())),
        None => (PYTHON_EXECUTABLE.to_owned(), None),
    }
}

/// The options Python was started with, for interpreters made later.
static OPTIONS: std::sync::OnceLock<Options> = std::sync::OnceLock::new();

/// The options Python was started with here (None before it started).
pub fn options() -> Option<&'static Options> {
    OPTIONS.get()
}

/// Before Python 3.12, the C half of asyncio (`_asyncio`) keeps its state,
/// the running loop among it, once per process, keyed by thread-state ids
/// that each interpreter counts from zero: event loops in two sub-interpreters
/// (two ASGI applications' loops, or a WSGI application's asyncio.run) take
/// each other for their own, and one fails with "Cannot run the event loop
/// while another loop is running" (CPython issue 91375). A sub-interpreter
/// therefore does without it, on asyncio's pure-Python half; the main
/// interpreter keeps it.
fn asyncio_in_pure_python(py: Python<'_>) -> PyResult<()> {
    if py.version_info() >= (3, 12) {
        return Ok(());
    }
    let modules = super::sys_modules(py);
    if !modules.contains("_asyncio")? {
        modules.set_item("_asyncio", py.None())?;
    }
    Ok(())
}

/// Sets up an interpreter (the main one, or one for an application group):
/// its sys.stdout/stderr/stdin, the `mod_wsgi` module, and sys.path.
pub fn configure_interpreter(py: Python<'_>, application_group: &str) -> Result<(), String> {
    let options = OPTIONS.get().cloned().unwrap_or_default();
    configure(py, &options, application_group).map_err(|e| describe(py, &e))
}

fn configure(py: Python<'_>, options: &Options, application_group: &str) -> PyResult<()> {
    let sys = py.import("sys")?;
    if !application_group.is_empty() {
        asyncio_in_pure_python(py)?;
    }
    let stderr = Py::new(py, LogStream::server("<stderr>", Level::Error))?;
    sys.setattr("stderr", &stderr)?;
    if options.restrict_stdout {
        sys.setattr("stdout", Py::new(py, RestrictedStream::new("stdout"))?)?;
    } else {
        sys.setattr("stdout", Py::new(py, LogStream::server("<stdout>", Level::Error))?)?;
    }
    if options.restrict_stdin {
        sys.setattr("stdin", Py::new(py, RestrictedStream::new("stdin"))?)?;
    }
    if options.restrict_signal {
        super::signal_intercept::install(py)?;
    }
    install_mod_wsgi_module(py, options, application_group)?;
    let sys_path = sys.getattr("path")?.cast_into::<pyo3::types::PyList>()?;
    if !options.path.is_empty() {
        // Added as site directories (their .pth files apply), then moved in
        // front of the standard library, in the order given, as mod_wsgi does.
        let before: Vec<String> = sys_path.extract()?;
        let site = py.import("site")?;
        for dir in &options.path {
            site.call_method1("addsitedir", (dir,))?;
        }
        let after: Vec<String> = sys_path.extract()?;
        let added: Vec<&String> = after.iter().filter(|p| !before.contains(p)).collect();
        let reordered: Vec<&String> = added.into_iter().chain(before.iter()).collect();
        sys.setattr("path", reordered)?;
    }
    if let Some(home) = &options.home_on_path {
        sys.getattr("path")?.call_method1("insert", (0, home))?;
    }
    Ok(())
}

/// The `mod_wsgi` module applications import to learn where they run.
fn install_mod_wsgi_module(py: Python<'_>, options: &Options, application_group: &str) -> PyResult<()> {
    let module = pyo3::types::PyModule::new(py, "mod_wsgi")?;
    module.setattr("version", super::wsgi::MOD_WSGI_VERSION)?;
    module.setattr("process_group", options.process_group.as_str())?;
    module.setattr("application_group", application_group)?;
    module.setattr("maximum_processes", options.maximum_processes)?;
    module.setattr("threads_per_process", options.threads_per_process)?;
    super::events::install(&module)?;
    py.import("sys")?.getattr("modules")?.set_item("mod_wsgi", module)?;
    Ok(())
}

fn describe(py: Python<'_>, err: &PyErr) -> String {
    let tb = err.traceback(py).and_then(|tb| tb.format().ok()).unwrap_or_default();
    format!("{tb}{err}")
}

/// "major.minor" of the linked Python; callable before Python starts.
pub fn version() -> String {
    // SAFETY: Py_GetVersion returns a static string and needs no initialisation.
    let full = unsafe { std::ffi::CStr::from_ptr(ffi::Py_GetVersion()) }.to_string_lossy();
    full.split('.').take(2).collect::<Vec<_>>().join(".")
}

/// Runs `f` with the GIL held by this thread's own thread state.
///
/// Panics if Python has not been started in this process.
pub fn with_gil<R>(f: impl for<'py> FnOnce(Python<'py>) -> R) -> R {
    thread_state();
    Python::attach(f)
}

/// This thread's main-interpreter thread state, made on first use.
pub fn thread_state() -> *mut ffi::PyThreadState {
    assert!(is_started(), "Python is not initialised in this process");
    THREAD_STATE.with(|cell| {
        if cell.get().is_null() {
            // SAFETY: the main interpreter exists while STARTED; a new thread state
            // needs no GIL, and being this thread's first it becomes the one
            // PyGILState_Ensure (and so Python::attach) resumes.
            cell.set(unsafe { ffi::PyThreadState_New(ffi::PyInterpreterState_Main()) });
        }
        cell.get()
    })
}

/// Finalises Python (atexit handlers run), on the thread that started it.
pub fn stop() {
    if !STARTED.swap(false, Ordering::AcqRel) {
        return;
    }
    let state = MAIN_THREAD_STATE.swap(std::ptr::null_mut(), Ordering::AcqRel);
    if state.is_null() {
        return;
    }
    // SAFETY: `state` was saved by start() and no other thread holds the GIL
    // once the MPM has joined its workers.
    unsafe {
        ffi::PyEval_RestoreThread(state);
        server_log(Level::Info, &format!("mod_wsgi (pid={}): Destroying interpreters.", std::process::id()));
        super::events::process_stopping(Python::assume_attached());
        super::environ_keys::forget_all();
        super::application_groups::end_all(state);
        let pid = std::process::id();
        server_log(Level::Info, &format!("mod_wsgi (pid={pid}): Cleanup interpreter ''."));
        server_log(Level::Info, &format!("mod_wsgi (pid={pid}): Terminating Python."));
        if ffi::Py_FinalizeEx() < 0 {
            server_log(Level::Error, "mod_wsgi: errors while finalising Python");
        }
        server_log(Level::Info, &format!("mod_wsgi (pid={pid}): Python has shutdown."));
    }
}

/// Where each thread of the main interpreter is, innermost frame first, as
/// `Thread <id> executing file "<file>", line <n>, in <function>` lines.
pub fn thread_stacks() -> Vec<String> {
    with_gil(|py| {
        let stacks = || -> PyResult<Vec<String>> {
            let frames = py.import("sys")?.call_method0("_current_frames")?;
            let frames = frames.cast_into::<pyo3::types::PyDict>()?;
            let mut lines = Vec::new();
            for (thread, frame) in frames.iter() {
                let mut frame = frame;
                while !frame.is_none() {
                    let code = frame.getattr("f_code")?;
                    lines.push(format!(
                        "Thread {thread} executing file \"{}\", line {}, in {}",
                        code.getattr("co_filename")?,
                        frame.getattr("f_lineno")?,
                        code.getattr("co_name")?
                    ));
                    frame = frame.getattr("f_back")?;
                }
            }
            Ok(lines)
        };
        stacks().unwrap_or_default()
    })
}
