//! Sizing of the event MPM, as mod_wsgi-express sizes it: in daemon mode Apache's children
//! only relay requests, so they get 1.5 times the application's threads plus headroom (or
//! `--max-clients`); in embedded mode they are the application, so exactly
//! processes x threads.

use super::options::Options;

/// The event MPM's settings.
#[derive(Debug, PartialEq, Eq)]
pub struct Mpm {
    pub server_limit: u32,
    pub threads_per_child: u32,
    pub max_request_workers: u32,
    pub start_servers: u32,
    pub min_spare_threads: u32,
    pub max_spare_threads: u32,
    /// Connections an Apache child serves before it is replaced (0: no limit).
    pub max_connections_per_child: u32,
}

/// Share of the child processes started at once, and kept as spare threads.
const INITIAL: f64 = 0.2;
const MIN_SPARE: f64 = 0.2;
const MAX_SPARE: f64 = 0.6;

pub fn size(o: &Options) -> Mpm {
    let threads = o.processes.saturating_mul(o.threads);
    if o.embedded_mode {
        return Mpm {
            server_limit: o.processes,
            threads_per_child: o.threads,
            max_request_workers: threads,
            start_servers: o.processes,
            min_spare_threads: threads,
            max_spare_threads: threads,
            // The children are the application: --maximum-requests recycles them.
            max_connections_per_child: o.maximum_requests.unwrap_or(0),
        };
    }
    let clients = match o.max_clients {
        Some(n) => n.max(threads),
        None => 10 + 10u32.max((1.5 * f64::from(threads)) as u32),
    };
    // Children of at most ~20 threads each; 10 when there are few clients.
    let per_child = if clients > 20 {
        clients / (clients / 20 + 1)
    } else {
        10
    };
    let children = clients.div_ceil(per_child);
    let share = |f: f64| (f * f64::from(children)) as u32;
    Mpm {
        server_limit: children,
        threads_per_child: per_child,
        max_request_workers: children * per_child,
        start_servers: share(INITIAL).max(1),
        min_spare_threads: per_child.max(share(MIN_SPARE) * per_child),
        max_spare_threads: per_child.max(share(MAX_SPARE) * per_child),
        max_connections_per_child: 0,
    }
}

/// The configuration lines.
pub fn lines(m: &Mpm) -> Vec<String> {
    vec![
        format!("ServerLimit {}", m.server_limit),
        format!("ThreadLimit {}", m.threads_per_child),
        format!("ThreadsPerChild {}", m.threads_per_child),
        format!("MaxRequestWorkers {}", m.max_request_workers),
        format!("StartServers {}", m.start_servers),
        format!("MinSpareThreads {}", m.min_spare_threads),
        format!("MaxSpareThreads {}", m.max_spare_threads),
        format!("MaxConnectionsPerChild {}", m.max_connections_per_child),
        // Idle keep-alive connections do not hold a thread with the event MPM.
        "MaxKeepAliveRequests 0".into(),
        "ThreadStackSize 262144".into(),
    ]
}

#[cfg(test)]
mod tests {
    use super::super::options::server;
    use super::*;

    #[test]
    fn default_daemon_mode() {
        // 1 x 5 threads: 10 + max(10, 7) = 20 clients, two children of 10.
        let m = size(&server("a").unwrap());
        assert_eq!(
            (m.server_limit, m.threads_per_child, m.max_request_workers),
            (2, 10, 20)
        );
        assert_eq!(
            (m.start_servers, m.min_spare_threads, m.max_spare_threads),
            (1, 10, 10)
        );
    }

    #[test]
    fn max_clients() {
        let m = size(&server("a --max-clients 100").unwrap());
        // 100 / (100/20 + 1) = 16 per child, 7 children.
        assert_eq!(
            (m.server_limit, m.threads_per_child, m.max_request_workers),
            (7, 16, 112)
        );
        assert_eq!(
            (m.start_servers, m.min_spare_threads, m.max_spare_threads),
            (1, 16, 64)
        );
        // Never below the application's 40 threads: 40 / 3 = 13 per child, 4 children.
        let m = size(&server("a --processes 4 --threads 10 --max-clients 5").unwrap());
        assert_eq!((m.threads_per_child, m.max_request_workers), (13, 52));
    }

    #[test]
    fn embedded_mode_is_processes_by_threads() {
        let m = size(
            &server("a --embedded-mode --processes 3 --threads 4 --maximum-requests 50").unwrap(),
        );
        assert_eq!(
            (m.server_limit, m.threads_per_child, m.max_request_workers),
            (3, 4, 12)
        );
        assert_eq!(m.max_connections_per_child, 50);
    }
}
