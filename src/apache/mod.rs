//! The only code that touches httpd and APR.

pub mod auth;
pub mod brigade;
pub mod commands;
pub mod config;
pub mod digest;
pub mod ffi;
pub mod guard;
pub mod hooks;
pub mod log;
pub mod malloc_arenas;
pub mod pool;
pub mod process;
pub mod regex;
pub mod request;
pub mod retained;
