//! Mapping of identity-module errors into the agent's error type.

use seccf_uicc::UsimError;

use crate::error::SecaError;

/// A card error as a [`SecaError`]: a MAC failure on AUTN is the network failing to
/// authenticate (never answered); everything else is a card problem.
pub(crate) fn usim_error(e: UsimError) -> SecaError {
    match e {
        UsimError::MacFailure => SecaError::NetworkAuthFailed,
        other => SecaError::Card(other.to_string()),
    }
}
