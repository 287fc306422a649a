//! Requests for an ASGI application already started in this process go
//! straight to its event loop: the worker that read a request queues it
//! here without taking the GIL, and the loop's thread (which holds the GIL
//! to run tasks anyway) builds the scope and starts the task. Otherwise a
//! request would take the GIL twice, on the worker and again on the loop,
//! with the two threads contending for it.
//!
//! An application is known here (a route) once its first request has gone
//! the long way: the script loaded, the callable found to be ASGI, its
//! lifespan startup done. A route is for one script version while script
//! reloading is on: a changed script takes the long way again.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use parking_lot::Mutex;
use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;
use pyo3::types::PyList;

use super::super::context::RequestContext;
use super::super::events::AsgiTracked;
use super::super::wsgi::{self, OwnedRequest, RequestInfo};
use super::channel::{Channel, Failure, Message, Shared, Waker, next_key, traceback};
use super::bell::Bell;
use super::{AsgiRequest, scope};
use crate::config::Interface;

/// A request on its way to the loop.
struct Arrival {
    request: Box<dyn OwnedRequest>,
    route: u64,
    context: Arc<RequestContext>,
    relay: crossbeam_channel::Sender<Message>,
    wake: Arc<OnceLock<Waker>>,
    shared: Arc<Shared>,
    key: u64,
}

/// An application this process has started, as requests name it.
struct Route {
    script: String,
    callable: String,
    interface: Interface,
    /// The script's mtime when its module was loaded.
    mtime: i64,
    id: u64,
}

/// One application group's queue to its event loop.
#[pyclass(frozen, module = "mod_wsgi")]
pub(super) struct Inbox {
    arrivals: Mutex<Vec<Arrival>>,
    /// Rung when the queue gains an arrival.
    pub bell: Arc<Bell>,
    routes: Mutex<Vec<Route>>,
    /// The application of each route; touched with the GIL held only.
    apps: Mutex<HashMap<u64, App>>,
}

/// An application and its lifespan state (None without lifespan).
struct App {
    callable: Py<PyAny>,
    state: Py<PyAny>,
}

static NEXT_ROUTE: AtomicU64 = AtomicU64::new(1);

impl Inbox {
    pub fn new() -> std::io::Result<Inbox> {
        Ok(Inbox {
            arrivals: Mutex::new(Vec::new()),
            bell: Arc::new(Bell::new()?),
            routes: Mutex::new(Vec::new()),
            apps: Mutex::new(HashMap::new()),
        })
    }

    /// Records that requests for `info`'s script and callable may come
    /// straight to the loop, which is to call `app` with `state`. A route
    /// already known for that script version stays as it is; one for an
    /// older version gives way (its application is kept: requests on their
    /// way to the loop may still name it).
    pub fn learn(&self, _py: Python<'_>, info: &RequestInfo<'_>, app: &Bound<'_, PyAny>, state: &Bound<'_, PyAny>) {
        let mut routes = self.routes.lock();
        let same = |r: &Route| r.script == info.script_filename && r.callable == info.callable_object && r.interface == info.interface;
        if let Some(at) = routes.iter().position(same) {
            if routes[at].mtime == info.script_mtime {
                return;
            }
            routes.swap_remove(at);
        }
        let id = NEXT_ROUTE.fetch_add(1, Ordering::Relaxed);
        // In `apps` before any worker can find it.
        self.apps.lock().insert(id, App { callable: app.clone().unbind(), state: state.clone().unbind() });
        routes.push(Route { script: info.script_filename.to_owned(), callable: info.callable_object.to_owned(), interface: info.interface, mtime: info.script_mtime, id });
    }

    /// The route for `info`, if its application is known to be running.
    pub fn route(&self, info: &RequestInfo<'_>) -> Option<u64> {
        let routes = self.routes.lock();
        let route = routes.iter().find(|r| r.script == info.script_filename && r.callable == info.callable_object && r.interface == info.interface)?;
        (!info.script_reloading || route.mtime == info.script_mtime).then_some(route.id)
    }

    /// Queues the request for the loop: the task starts there, and the
    /// returned request relays its I/O as if started here.
    pub fn deliver(&self, route: u64, request: Box<dyn OwnedRequest>, context: &Arc<RequestContext>, helper: Arc<Py<pyo3::types::PyModule>>) -> Box<AsgiRequest> {
        let (timeout, group, body_length) = {
            let info = request.info();
            (info.request_timeout, info.application_group.to_owned(), info.content_length())
        };
        let wake = Arc::new(OnceLock::new());
        let shared = Arc::new(Shared::default());
        let (sender, relay) = crossbeam_channel::unbounded();
        let key = next_key();
        if let Some(io) = context.io.lock().as_mut() {
            io.untimed();
        }
        let asgi = Box::new(AsgiRequest::new(relay, key, helper, shared.clone(), wake.clone(), context.clone(), group, timeout, body_length));
        self.arrivals.lock().push(Arrival { request, route, context: context.clone(), relay: sender, wake, shared, key });
        self.bell.ring();
        asgi
    }

    /// Starts what has arrived, for the loop: (application, scope, channel,
    /// request key, request_data) for each task to create.
    fn arrived<'py>(&self, py: Python<'py>) -> Bound<'py, PyList> {
        self.bell.answer(py);
        let arrivals = std::mem::take(&mut *self.arrivals.lock());
        let tasks = PyList::empty(py);
        for arrival in arrivals {
            if let Some(task) = self.start(py, arrival) {
                let _ = tasks.append(task);
            }
        }
        tasks
    }

    /// The task to create for `arrival`: None when there is none to run
    /// (its request has ended meanwhile, or failed here, and is ended so).
    fn start<'py>(&self, py: Python<'py>, arrival: Arrival) -> Option<Bound<'py, PyAny>> {
        let Arrival { request, route, context, relay, wake, shared, key } = arrival;
        if shared.gone.load(Ordering::Acquire) {
            // Ended before its task could start (request-timeout, the process stopping).
            return None;
        }
        let info = request.info();
        let found = self.apps.lock().get(&route).map(|app| (app.callable.clone_ref(py).into_bound(py), app.state.clone_ref(py).into_bound(py)));
        let started = found.ok_or_else(|| PyRuntimeError::new_err("mod_wsgi: the ASGI application is no longer known in this process")).and_then(|(app, state)| {
            let scope = scope::scope(py, &info, &state)?;
            let (thread_id, _, _) = wsgi::count_request();
            let (events, app) = AsgiTracked::begin(py, &context, &info, thread_id, &scope, app);
            if events.has_subscribers() && !shared.hand_events(&events) {
                events.end(py, 0);
                return Ok(None);
            }
            let data = events.request_data(py).clone();
            let channel = Bound::new(py, Channel::new(relay.clone(), wake.clone(), shared.clone(), events, self.bell.clone(), context.clone()))?;
            Ok(Some((app, scope, channel, key, data).into_pyobject(py)?.into_any()))
        });
        match started {
            Ok(task) => task,
            Err(err) => {
                // Ended as a task that raised at once would be.
                let _ = relay.send(Message::Done(Some(Failure { traceback: traceback(py, &err), client_gone: false })));
                if let Some(waker) = wake.get() {
                    (waker.relay)();
                }
                None
            }
        }
    }
}

#[pymethods]
impl Inbox {
    fn fileno(&self) -> i32 {
        self.bell.fileno()
    }

    /// Called by the loop when `fileno` is readable.
    fn take<'py>(&self, py: Python<'py>) -> Bound<'py, PyList> {
        self.arrived(py)
    }
}
