//! The breaker filter on encoded requests.
