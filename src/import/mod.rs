//! Bringing history over from other systems into the log.

pub mod omnara;
