//! The gRPC contracts (filled in by the mesh issue).
