//! seccf-seca (being written).
