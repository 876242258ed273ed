//! Reference client for apps and industry partners.
#![forbid(unsafe_code)]

pub mod pdq;
pub mod transport;
