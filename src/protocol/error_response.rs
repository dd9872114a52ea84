//! Error answers built by the proxy itself (in progress).
