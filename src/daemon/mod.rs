//! Daemon mode: WSGIDaemonProcess groups run applications in processes of
//! their own, which Apache's children reach over a UNIX socket.

mod cgi_response;
pub(crate) mod client;
mod connection;
mod handover;
pub(crate) mod groups;
mod monitor;
mod origin;
mod pieces;
pub(crate) mod os;
mod process;
pub mod protocol;
mod reactor;
mod relay;
mod server;
mod succession;
mod supervisor;
mod wire;
