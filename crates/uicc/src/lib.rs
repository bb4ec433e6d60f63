//! seccf-uicc (being written).
