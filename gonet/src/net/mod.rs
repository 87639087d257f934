//! Networking: placeholder.
