//! Safe decoding of request bodies from untrusted clients (in progress).
