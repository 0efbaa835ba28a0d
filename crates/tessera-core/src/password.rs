//! Passwords: the strength policy and Argon2id hashing on a bounded pool.
//!
//! Hashing is deliberately slow (tens of milliseconds and 19 MiB each), so it
//! never runs on the async runtime's threads: it runs on a pool of its own,
//! one thread per core at the lowest scheduling priority (so it takes all
//! the CPU that requests leave idle, and yields at once to requests), with a
//! bounded queue in front; past that the caller is told the server is busy
//! instead of piling up work.

use std::sync::Arc;

use argon2::{Algorithm, Argon2, Params, PasswordHash, PasswordHasher as _, PasswordVerifier};
use tokio::sync::Semaphore;
use zeroize::Zeroizing;

use crate::secret::fill_random;

/// Shortest acceptable password, in characters.
pub const MIN_PASSWORD_CHARS: usize = 8;
/// Longest acceptable password, in characters: beyond this, hashing cost is
/// an attacker's lever, not a user's benefit.
pub const MAX_PASSWORD_CHARS: usize = 1024;

/// Passwords so common that every guessing attack tries them first.
const COMMON_PASSWORDS: &[&str] = &[
    "password",
    "password1",
    "password12",
    "password123",
    "password1234",
    "passw0rd",
    "p@ssw0rd",
    "p@ssword",
    "12345678",
    "123456789",
    "1234567890",
    "0123456789",
    "87654321",
    "11111111",
    "00000000",
    "12341234",
    "11223344",
    "qwertyui",
    "qwertyuiop",
    "qwerty123",
    "qwerty12",
    "1q2w3e4r",
    "1q2w3e4r5t",
    "1qaz2wsx",
    "zaq12wsx",
    "asdfghjk",
    "asdfghjkl",
    "zxcvbnm1",
    "iloveyou",
    "iloveyou1",
    "sunshine",
    "princess",
    "football",
    "baseball",
    "superman",
    "starwars",
    "whatever",
    "trustno1",
    "letmein1",
    "welcome1",
    "welcome123",
    "admin123",
    "administrator",
    "changeme",
    "computer",
    "internet",
    "abc12345",
    "abcd1234",
    "aa123456",
    "default1",
    "monkey123",
    "dragon123",
    "master123",
    "secret123",
    "access14",
    "passpass",
    "test1234",
    "testtest",
    "login123",
];

/// Why a password was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PasswordPolicyError {
    /// Fewer than [`MIN_PASSWORD_CHARS`] characters.
    #[error("the password must be at least {MIN_PASSWORD_CHARS} characters long")]
    TooShort,
    /// More than [`MAX_PASSWORD_CHARS`] characters.
    #[error("the password must be at most {MAX_PASSWORD_CHARS} characters long")]
    TooLong,
    /// On the list of the most common passwords, or one character repeated.
    #[error("the password is too common or too easy to guess")]
    TooCommon,
    /// Equal to the username, ignoring case.
    #[error("the password must not be the username")]
    SameAsUsername,
    /// Contains a NUL or other control character.
    #[error("the password contains a control character")]
    ControlCharacter,
}

/// Checks a new password against the policy.
pub fn check_strength(password: &str, username: &str) -> Result<(), PasswordPolicyError> {
    // Count at most one past the limit, so a huge input costs little.
    let length = password.chars().take(MAX_PASSWORD_CHARS + 1).count();
    if length < MIN_PASSWORD_CHARS {
        return Err(PasswordPolicyError::TooShort);
    }
    if length > MAX_PASSWORD_CHARS {
        return Err(PasswordPolicyError::TooLong);
    }
    // Tabs and newlines included: they are never typed on purpose and break
    // form submission across clients.
    if password.chars().any(char::is_control) {
        return Err(PasswordPolicyError::ControlCharacter);
    }
    let lowered = password.to_lowercase();
    if COMMON_PASSWORDS.contains(&lowered.as_str()) {
        return Err(PasswordPolicyError::TooCommon);
    }
    let mut chars = password.chars();
    if let Some(first) = chars.next()
        && chars.all(|c| c == first)
    {
        return Err(PasswordPolicyError::TooCommon);
    }
    if lowered == crate::username::normalize(username) || lowered == username.to_lowercase() {
        return Err(PasswordPolicyError::SameAsUsername);
    }
    Ok(())
}

/// Argon2id cost parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HashCost {
    /// Memory in KiB.
    pub memory_kib: u32,
    /// Passes over memory.
    pub iterations: u32,
    /// Lanes.
    pub parallelism: u32,
}

impl Default for HashCost {
    /// OWASP's recommended minimum for Argon2id.
    fn default() -> Self {
        Self {
            memory_kib: 19_456,
            iterations: 2,
            parallelism: 1,
        }
    }
}

/// Hashing could not be done.
#[derive(Debug, thiserror::Error)]
pub enum HashError {
    /// The queue in front of the hashing pool is full.
    #[error("too many password operations in progress")]
    Busy,
    /// Bad parameters or a worker failure: a server-side fault.
    #[error("password hashing failed: {0}")]
    Internal(String),
}

/// Argon2id hashing and verification on a bounded blocking pool.
#[derive(Clone)]
pub struct PasswordHasher {
    params: Params,
    pool: Arc<HashPool>,
    queue: Arc<Semaphore>,
    /// A hash of a random password, verified against when the user does not
    /// exist so that "no such user" costs the same time as "wrong password".
    dummy_hash: Arc<String>,
    /// Argon2 verifications run so far (dummy ones included), for metrics.
    verifications: Arc<std::sync::atomic::AtomicU64>,
}

impl std::fmt::Debug for PasswordHasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PasswordHasher")
            .field("params", &self.params)
            .field("workers", &self.pool.workers)
            .finish_non_exhaustive()
    }
}

impl PasswordHasher {
    /// A hasher running at most `workers` hashes at once, with up to
    /// `queue` more waiting.
    pub fn new(cost: HashCost, workers: usize, queue: usize) -> Result<Self, HashError> {
        let params = Params::new(cost.memory_kib, cost.iterations, cost.parallelism, None)
            .map_err(|e| HashError::Internal(format!("invalid Argon2 parameters: {e}")))?;
        let mut random_password = Zeroizing::new([0u8; 32]);
        fill_random(random_password.as_mut()).map_err(|e| HashError::Internal(e.to_string()))?;
        let dummy_hash = hash_blocking(&params, random_password.as_ref())?;
        let workers = workers.max(1);
        Ok(Self {
            params,
            pool: Arc::new(HashPool::start(workers)?),
            queue: Arc::new(Semaphore::new(workers + queue)),
            dummy_hash: Arc::new(dummy_hash),
            verifications: Arc::new(std::sync::atomic::AtomicU64::new(0)),
        })
    }

    /// Hashes `password` into a PHC string.
    pub async fn hash(&self, password: Zeroizing<String>) -> Result<String, HashError> {
        let params = self.params.clone();
        self.run(move || hash_blocking(&params, password.as_bytes()))
            .await?
    }

    /// Checks `password` against a stored PHC string. `None` (no such user)
    /// checks against a dummy hash and always fails, taking the same time.
    pub async fn verify(
        &self,
        password: Zeroizing<String>,
        stored: Option<String>,
    ) -> Result<Verified, HashError> {
        let exists = stored.is_some();
        let verifications = self.verifications.clone();
        let stored = stored.unwrap_or_else(|| self.dummy_hash.as_ref().clone());
        let current = self.params.clone();
        self.run(move || {
            verifications.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let Ok(parsed) = PasswordHash::new(&stored) else {
                return Verified::Mismatch;
            };
            let matches = Argon2::default()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok();
            if !(matches && exists) {
                return Verified::Mismatch;
            }
            let outdated = Params::try_from(&parsed)
                .map(|p| {
                    p.m_cost() != current.m_cost()
                        || p.t_cost() != current.t_cost()
                        || p.p_cost() != current.p_cost()
                })
                .unwrap_or(true)
                || parsed.algorithm.as_str() != "argon2id";
            if outdated {
                Verified::MatchNeedsRehash
            } else {
                Verified::Match
            }
        })
        .await
    }

    /// Verifications per second the pool completes in `window` with
    /// `in_flight` checks of the dummy hash always waiting: what the Argon2id
    /// parameters allow on this machine right now.
    pub async fn throughput(
        &self,
        window: std::time::Duration,
        in_flight: usize,
    ) -> Result<f64, HashError> {
        let started = std::time::Instant::now();
        let until = started + window;
        let loops: Vec<_> = (0..in_flight.max(1))
            .map(|_| {
                let hasher = self.clone();
                tokio::spawn(async move {
                    let mut done = 0u64;
                    while std::time::Instant::now() < until {
                        hasher.verify(Zeroizing::new("x".into()), None).await?;
                        done += 1;
                    }
                    Ok::<u64, HashError>(done)
                })
            })
            .collect();
        let mut done = 0u64;
        for check in loops {
            done += check
                .await
                .map_err(|e| HashError::Internal(e.to_string()))??;
        }
        let seconds = started.elapsed().as_secs_f64();
        Ok(if seconds > 0.0 {
            done as f64 / seconds
        } else {
            0.0
        })
    }

    /// Argon2 verifications run so far, dummy ones for unknown users included.
    pub fn verifications(&self) -> u64 {
        self.verifications
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    async fn run<T, F>(&self, work: F) -> Result<T, HashError>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        let _queued = self.queue.try_acquire().map_err(|_| HashError::Busy)?;
        let (done, result) = tokio::sync::oneshot::channel();
        self.pool.submit(Box::new(move || {
            // The caller may have gone away; nothing to do then.
            let _ = done.send(work());
        }))?;
        result
            .await
            .map_err(|_| HashError::Internal("hashing worker failed".into()))
    }
}

type Job = Box<dyn FnOnce() + Send>;

/// Threads that only hash, at the lowest scheduling priority.
struct HashPool {
    jobs: std::sync::Mutex<std::sync::mpsc::Sender<Job>>,
    workers: usize,
}

impl HashPool {
    fn start(workers: usize) -> Result<Self, HashError> {
        let (sender, receiver) = std::sync::mpsc::channel::<Job>();
        let receiver = Arc::new(std::sync::Mutex::new(receiver));
        for i in 0..workers {
            let receiver = receiver.clone();
            std::thread::Builder::new()
                .name(format!("tessera-argon2-{i}"))
                .spawn(move || {
                    lower_priority();
                    loop {
                        let job = {
                            let receiver = receiver.lock().unwrap_or_else(|p| p.into_inner());
                            receiver.recv()
                        };
                        match job {
                            Ok(job) => job(),
                            // The hasher is gone: so is the pool.
                            Err(_) => return,
                        }
                    }
                })
                .map_err(|e| HashError::Internal(format!("cannot start a hashing thread: {e}")))?;
        }
        Ok(Self {
            jobs: std::sync::Mutex::new(sender),
            workers,
        })
    }

    fn submit(&self, job: Job) -> Result<(), HashError> {
        self.jobs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .send(job)
            .map_err(|_| HashError::Internal("hashing pool closed".into()))
    }
}

/// Gives the calling thread the lowest priority (niceness 19), so hashing
/// never delays request handling; it still gets every idle cycle.
fn lower_priority() {
    use thread_priority::{ThreadPriority, set_current_thread_priority};
    if let Err(e) = set_current_thread_priority(ThreadPriority::Min) {
        tracing::debug!(error = ?e, "cannot lower the hashing thread's priority");
    }
}

/// The outcome of a password check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verified {
    /// Wrong password, no such user, or unreadable stored hash.
    Mismatch,
    /// Right password, stored with the current parameters.
    Match,
    /// Right password, stored with old parameters: store a fresh hash.
    MatchNeedsRehash,
}

impl Verified {
    /// Whether the password was right.
    pub fn is_match(self) -> bool {
        !matches!(self, Verified::Mismatch)
    }
}

fn hash_blocking(params: &Params, password: &[u8]) -> Result<String, HashError> {
    let mut salt = [0u8; 16];
    fill_random(&mut salt).map_err(|e| HashError::Internal(e.to_string()))?;
    let hasher = Argon2::new(Algorithm::Argon2id, argon2::Version::V0x13, params.clone());
    hasher
        .hash_password_with_salt(password, &salt)
        .map(|hash| hash.to_string())
        .map_err(|e| HashError::Internal(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cheap() -> HashCost {
        HashCost {
            memory_kib: 64,
            iterations: 1,
            parallelism: 1,
        }
    }

    #[test]
    fn policy_refuses_weak_passwords() {
        assert_eq!(
            check_strength("short", "bob"),
            Err(PasswordPolicyError::TooShort)
        );
        assert_eq!(
            check_strength(&"x".repeat(1025), "bob"),
            Err(PasswordPolicyError::TooLong)
        );
        assert_eq!(
            check_strength("Password123", "bob"),
            Err(PasswordPolicyError::TooCommon)
        );
        assert_eq!(
            check_strength("aaaaaaaaaa", "bob"),
            Err(PasswordPolicyError::TooCommon)
        );
        assert_eq!(
            check_strength("BobTheBuilder", "bobthebuilder"),
            Err(PasswordPolicyError::SameAsUsername)
        );
        assert_eq!(
            check_strength("correct\0horse", "bob"),
            Err(PasswordPolicyError::ControlCharacter)
        );
        assert_eq!(check_strength("correct horse battery", "bob"), Ok(()));
        assert_eq!(check_strength(&"ab".repeat(512), "bob"), Ok(()));
        // Counted in characters, not bytes: 8 two-byte characters pass.
        assert_eq!(check_strength("éàüöçñßø", "bob"), Ok(()));
    }

    #[tokio::test]
    async fn hashes_are_argon2id_phc_and_verify() -> Result<(), HashError> {
        let hasher = PasswordHasher::new(cheap(), 2, 8)?;
        let phc = hasher.hash(Zeroizing::new("correct horse".into())).await?;
        assert!(phc.starts_with("$argon2id$v=19$m=64,t=1,p=1$"), "{phc}");
        let good = hasher
            .verify(Zeroizing::new("correct horse".into()), Some(phc.clone()))
            .await?;
        assert_eq!(good, Verified::Match);
        let bad = hasher
            .verify(Zeroizing::new("wrong horse".into()), Some(phc))
            .await?;
        assert_eq!(bad, Verified::Mismatch);
        Ok(())
    }

    #[tokio::test]
    async fn unknown_user_never_matches() -> Result<(), HashError> {
        let hasher = PasswordHasher::new(cheap(), 1, 1)?;
        let outcome = hasher
            .verify(Zeroizing::new("anything".into()), None)
            .await?;
        assert_eq!(outcome, Verified::Mismatch);
        Ok(())
    }

    #[tokio::test]
    async fn old_parameters_ask_for_a_rehash() -> Result<(), HashError> {
        let old = PasswordHasher::new(cheap(), 1, 1)?;
        let phc = old.hash(Zeroizing::new("correct horse".into())).await?;
        let new = PasswordHasher::new(
            HashCost {
                memory_kib: 128,
                ..cheap()
            },
            1,
            1,
        )?;
        let outcome = new
            .verify(Zeroizing::new("correct horse".into()), Some(phc))
            .await?;
        assert_eq!(outcome, Verified::MatchNeedsRehash);
        Ok(())
    }

    #[tokio::test]
    async fn garbage_stored_hash_is_a_mismatch() -> Result<(), HashError> {
        let hasher = PasswordHasher::new(cheap(), 1, 1)?;
        let outcome = hasher
            .verify(Zeroizing::new("x".into()), Some("not a phc string".into()))
            .await?;
        assert_eq!(outcome, Verified::Mismatch);
        Ok(())
    }

    #[tokio::test]
    async fn a_full_queue_answers_busy() -> Result<(), HashError> {
        let hasher = PasswordHasher::new(HashCost::default(), 1, 0)?;
        let first = {
            let hasher = hasher.clone();
            tokio::spawn(async move { hasher.hash(Zeroizing::new("correct horse".into())).await })
        };
        // Wait until the first job holds the only queue slot.
        while hasher.queue.available_permits() != 0 {
            tokio::task::yield_now().await;
        }
        let second = hasher.hash(Zeroizing::new("correct horse".into())).await;
        assert!(matches!(second, Err(HashError::Busy)));
        let first = first
            .await
            .map_err(|e| HashError::Internal(e.to_string()))?;
        assert!(first.is_ok());
        Ok(())
    }
}
