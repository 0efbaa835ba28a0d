//! sqlx errors in the domain's words.

use tessera_core::store::StoreError;

/// The store cannot be reached or refused the statement.
pub fn unavailable(e: sqlx::Error) -> StoreError {
    StoreError::Unavailable(e.to_string())
}

/// Like [`unavailable`], but a unique-key violation is [`StoreError::Duplicate`].
pub fn write_error(e: sqlx::Error) -> StoreError {
    if let sqlx::Error::Database(db) = &e
        && db.is_unique_violation()
    {
        return StoreError::Duplicate;
    }
    unavailable(e)
}

/// Stored data that does not read back into the domain.
pub fn corrupt(e: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(e.to_string())
}
