//! The pure parts of `seccf-load`, as a library so the fuzz targets can reach them:
//!
//! - [`procstat`]: the `/proc/<pid>/stat` and `/proc/stat` parsers behind the per-process
//!   CPU accounting of the gateway benchmarks;
//! - [`keyfile`]: the GBA key file one benchmark run shares between its invocations and
//!   with the peers (stunnel).
//!
//! No IO happens here; the binary (`src/main.rs`) reads the files and runs the load.

pub mod keyfile;
pub mod procstat;
