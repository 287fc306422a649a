//! Application groups: every named group runs in a sub-interpreter of its
//! own (created on first use and kept for the life of the process), so two
//! applications in one process do not share modules; `%{GLOBAL}` ("") is the
//! main interpreter.
//!
//! pyo3 only knows the main interpreter (its attach goes through the
//! PyGILState API, which is bound to one interpreter per thread), so here each
//! thread keeps one thread state per sub-interpreter, entered with
//! PyEval_RestoreThread, and Rust code runs inside it through a small Python
//! function (`run_job`): its pyo3 trampoline marks the thread attached, so
//! nothing pyo3 does inside is deferred to another interpreter.

use std::cell::RefCell;
use std::collections::HashMap;

use parking_lot::Mutex;
use pyo3::ffi;
use pyo3::prelude::*;

use super::interpreter;

/// Sub-interpreters by group name (addresses of PyInterpreterState).
static INTERPRETERS: Mutex<Option<HashMap<String, usize>>> = Mutex::new(None);
/// Every sub-interpreter thread state made, as (interpreter, thread state),
/// so they can be cleared before the interpreters are ended.
static THREAD_STATES: Mutex<Vec<(usize, usize)>> = Mutex::new(Vec::new());
/// The `run_job` function object of each sub-interpreter.
static TRAMPOLINES: Mutex<Option<HashMap<usize, usize>>> = Mutex::new(None);

thread_local! {
    /// This thread's state in each sub-interpreter it has run code in.
    static STATES: RefCell<HashMap<usize, usize>> = RefCell::new(HashMap::new());
    /// Per group name: (thread state, run_job function), so a request finds
    /// its interpreter without taking any process-wide lock.
    static GROUPS: RefCell<HashMap<String, (usize, usize)>> = RefCell::new(HashMap::new());
}

/// Runs `f` in the interpreter of application group `group`.
pub fn with_group<R>(group: &str, f: impl for<'py> FnOnce(Python<'py>) -> R) -> R {
    if group.is_empty() {
        return interpreter::with_gil(f);
    }
    let known = GROUPS.with(|g| g.borrow().get(group).copied());
    let (tstate, function) = match known {
        Some(entry) => entry,
        None => {
            let tstate = thread_state_for(interpreter_for(group));
            (tstate, 0)
        }
    };
    // SAFETY: `tstate` belongs to this thread and the group's interpreter; it
    // is not current anywhere, and RestoreThread takes the GIL for it.
    unsafe { ffi::PyEval_RestoreThread(tstate as *mut ffi::PyThreadState) };
    let function = if function == 0 {
        // SAFETY: the GIL is held by the group's thread state.
        let function = trampoline(unsafe { ffi::PyInterpreterState_Get() } as usize);
        GROUPS.with(|g| g.borrow_mut().insert(group.to_owned(), (tstate, function)));
        function
    } else {
        function
    };
    let result = call_job(function, f);
    // SAFETY: releases the GIL taken above; no Python object from `f` outlives it.
    unsafe { ffi::PyEval_SaveThread() };
    result
}

fn interpreter_for(group: &str) -> usize {
    let mut table = INTERPRETERS.lock();
    let table = table.get_or_insert_with(HashMap::new);
    if let Some(&interp) = table.get(group) {
        return interp;
    }
    super::server_log(super::Level::Info, &format!("mod_wsgi (pid={}): Create interpreter '{group}'.", std::process::id()));
    let main = interpreter::thread_state();
    // SAFETY: this thread's main-interpreter state takes the GIL; Py_NewInterpreter
    // then makes a new interpreter and its first thread state current.
    let (interp, tstate) = unsafe {
        ffi::PyEval_RestoreThread(main);
        let tstate = ffi::Py_NewInterpreter();
        assert!(!tstate.is_null(), "Py_NewInterpreter failed for application group '{group}'");
        (ffi::PyThreadState_GetInterpreter(tstate) as usize, tstate as usize)
    };
    THREAD_STATES.lock().push((interp, tstate));
    STATES.with(|s| s.borrow_mut().insert(interp, tstate));
    let configured = run_attached(|py| interpreter::configure_interpreter(py, group));
    if let Err(msg) = configured {
        super::server_log(super::Level::Error, &format!("mod_wsgi (pid={}): Failed to set up interpreter '{group}': {msg}", std::process::id()));
    }
    // SAFETY: releases the GIL held by the new interpreter's thread state.
    unsafe { ffi::PyEval_SaveThread() };
    table.insert(group.to_owned(), interp);
    interp
}

fn thread_state_for(interp: usize) -> usize {
    if let Some(tstate) = STATES.with(|s| s.borrow().get(&interp).copied()) {
        return tstate;
    }
    // The main-interpreter state comes first: a thread's first state is the
    // one PyGILState (and so pyo3's attach) uses.
    interpreter::thread_state();
    // SAFETY: a new thread state for a live interpreter; needs no GIL.
    let tstate = unsafe { ffi::PyThreadState_New(interp as *mut ffi::PyInterpreterState) } as usize;
    THREAD_STATES.lock().push((interp, tstate));
    STATES.with(|s| s.borrow_mut().insert(interp, tstate));
    tstate
}

/// The job `run_job` runs: a pointer to a `&mut dyn FnMut(Python)`.
type Job<'a> = &'a mut dyn for<'py> FnMut(Python<'py>);

#[pyfunction]
fn run_job(py: Python<'_>, job: usize) {
    // SAFETY: `job` is the address of a Job on the stack of run_attached,
    // which waits for this call to return.
    let job = unsafe { &mut *(job as *mut Job<'_>) };
    job(py);
}

/// Runs `f` in the current (sub-)interpreter, whose thread state holds the GIL.
fn run_attached<R>(f: impl for<'py> FnOnce(Python<'py>) -> R) -> R {
    // SAFETY: the GIL is held by the current thread state.
    let interp = unsafe { ffi::PyInterpreterState_Get() } as usize;
    call_job(trampoline(interp), f)
}

/// Calls `f` through `function`, the current interpreter's run_job.
fn call_job<R>(function: usize, f: impl for<'py> FnOnce(Python<'py>) -> R) -> R {
    let mut f = Some(f);
    let mut out = None;
    let mut call = |py: Python<'_>| out = Some((f.take().expect("runs once"))(py));
    let mut job: Job<'_> = &mut call;
    // SAFETY: calls the function object made for this interpreter with one
    // int argument; the result and the argument are released here.
    unsafe {
        let arg = ffi::PyLong_FromSize_t(&mut job as *mut Job<'_> as usize);
        let result = ffi::PyObject_CallOneArg(function as *mut ffi::PyObject, arg);
        ffi::Py_DECREF(arg);
        if result.is_null() {
            ffi::PyErr_Print();
        } else {
            ffi::Py_DECREF(result);
        }
    }
    out.expect("the application group call did not complete")
}

fn trampoline(interp: usize) -> usize {
    let mut table = TRAMPOLINES.lock();
    let table = table.get_or_insert_with(HashMap::new);
    *table.entry(interp).or_insert_with(|| {
        // SAFETY: the GIL is held by this interpreter's thread state; the
        // function object is made in it and kept (never released) for its life.
        let py = unsafe { Python::assume_attached() };
        let function = wrap_pyfunction!(run_job, py).expect("create run_job");
        function.into_ptr() as usize
    })
}

/// Ends every sub-interpreter (their atexit handlers run). Called with the
/// GIL held by `main`, the thread state that started Python, before Python
/// is finalised; threads that used the interpreters have finished.
pub fn end_all(main: *mut ffi::PyThreadState) {
    let interps: Vec<(String, usize)> = INTERPRETERS.lock().take().map(|t| t.into_iter().collect()).unwrap_or_default();
    let mut states = std::mem::take(&mut *THREAD_STATES.lock());
    let pid = std::process::id();
    for (name, interp) in interps {
        super::server_log(super::Level::Info, &format!("mod_wsgi (pid={pid}): Destroy interpreter '{name}'."));
        let mine: Vec<*mut ffi::PyThreadState> =
            states.iter().filter(|(i, _)| *i == interp).map(|&(_, t)| t as *mut ffi::PyThreadState).collect();
        states.retain(|(i, _)| *i != interp);
        // Py_EndInterpreter wants the interpreter's last thread state, and
        // CPython 3.11 cannot make a new one once all are gone: keep one.
        let Some((&last, others)) = mine.split_last() else { continue };
        // SAFETY: every thread state of `interp` is idle (its thread is done
        // with Python); the others are cleared and deleted, the last ends the
        // interpreter, and the main state is made current again.
        unsafe {
            for &tstate in others {
                ffi::PyThreadState_Swap(tstate);
                ffi::PyThreadState_Clear(tstate);
                ffi::PyThreadState_Swap(main);
                ffi::PyThreadState_Delete(tstate);
            }
            ffi::PyThreadState_Swap(last);
            run_attached(super::events::process_stopping);
            ffi::Py_EndInterpreter(last);
            ffi::PyThreadState_Swap(main);
        }
        super::server_log(super::Level::Info, &format!("mod_wsgi (pid={pid}): End interpreter '{name}'."));
    }
}
