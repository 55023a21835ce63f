//! One file per area of the REST surface.

pub mod actions;
pub mod apps;
pub mod audit;
pub mod hooks;
pub mod messages;
pub mod notifications;
pub mod questions;
pub mod service;
pub mod sessions;
pub mod streams;
