//! The integration suite's harness: three postgres-mcp containers behind nginx, built and run on
//! this machine's Docker engine with testcontainers (no registry), and the tools the scenarios in
//! `tests/` use to load, break, reload and restart them.
//!
//! `s3_store` is the object store (moto, reachable only on a network the test creates) the Compose
//! sync variant is started against.
//!
//! What a scenario proves holds for the production image: the containers run the same binary, user,
//! paths and entrypoint (`scripts/build-images.sh`), with the environment of `compose/compose.yaml`
//! and the kit's `nginx/nginx.conf`, not test copies.

pub mod api_shim;
pub mod cluster;
pub mod compose_env;
pub mod docker;
pub mod images;
pub mod load;
pub mod report;
pub mod s3_store;
pub mod shared_files;
