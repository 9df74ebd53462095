//! fedora end-to-end tests (being written).

mod support;
