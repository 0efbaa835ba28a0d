//! Passwords: the strength policy and Argon2id hashing on a bounded pool.
//!
//! Hashing is deliberately slow (tens of milliseconds and 19 MiB each), so it
//! never runs on the async runtime's threads: it runs on a pool of its own,
//! one thread per core at the lowest scheduling priority (so it takes all
//! the CPU that requests leave idle, and yields at once to requests).
//!
//! In front of the pool is one first-come-first-served queue, bounded by
//! time rather than by count: a hash is admitted if, at the measured speed of
//! the pool, it will be done within [`QUEUE_DEADLINE`]; otherwise it never
//! joins the line, and the caller is told how long the queued work needs
//! (`Retry-After`).
//! Two things make overload degrade gracefully instead of collapsing:
//!
//! - **A waiting caller costs nothing; a refused one costs a request.** A
//!   client refused at once and retrying at once turns into a loop of
//!   requests at normal priority, and those starve the niceness-19 hashing
//!   threads: the pool stops draining and everyone is refused (measured: a
//!   queue of 33 on one core and 64 clients gave 0–3 sign-ins in 10 s and
//!   10,000 refusals a second). So the line is as long as the deadline
//!   allows (hundreds of sign-ins per core), not a fixed 32.
//! - **Refusals yield to hashing.** A refused caller is answered only when
//!   the work ahead of it is expected to be done (at most [`MAX_HOLD`]
//!   later), asleep meanwhile: a client that retries at once then sends one
//!   request per hold instead of one per few microseconds, and the hashing
//!   threads keep their CPU. Raising the hashing threads' priority while
//!   work waits would do the same, but an unprivileged thread cannot lower
//!   its niceness again once raised (`RLIMIT_NICE`).
//!
//! An admitted caller is served, not shed later: shedding after a wait
//! wastes the wait. Callers that have gone (timed out, disconnected) are
//! skipped when their turn comes, without hashing.

use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use argon2::{Algorithm, Argon2, Params, PasswordHash, PasswordHasher as _, PasswordVerifier};
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

/// Hashes allowed to wait per worker: a bound on memory only, since the
/// queue's deadline refuses long before a queue this deep fills.
pub const QUEUE_PER_WORKER: usize = 1024;

/// Longest a hash may take from the request to its result, waiting included:
/// a request that would take longer never joins the line. A third of the
/// request timeout, and about the limit of a person's patience with a
/// sign-in form; at the default cost it admits hundreds per core.
pub const QUEUE_DEADLINE: Duration = Duration::from_secs(10);

/// Longest a refused caller is held (asleep) before its answer: enough that a
/// client retrying at once costs one request a second, short enough that a
/// person is told promptly.
const MAX_HOLD: Duration = Duration::from_secs(1);

/// Weight of the newest measurement in the moving average of the hash time.
const SMOOTHING: f64 = 0.125;

/// Hashing could not be done.
#[derive(Debug, thiserror::Error)]
pub enum HashError {
    /// The work queued already fills the deadline: try again later.
    #[error("too many password operations in progress; retry after {retry_after} s")]
    Busy {
        /// Seconds the work queued now needs, by the measured hash time.
        retry_after: u64,
    },
    /// Bad parameters or a worker failure: a server-side fault.
    #[error("password hashing failed: {0}")]
    Internal(String),
}

/// Argon2id hashing and verification on a bounded blocking pool.
#[derive(Clone)]
pub struct PasswordHasher {
    params: Params,
    pool: Arc<HashPool>,
    /// A hash of a random password, verified against when the user does not
    /// exist so that "no such user" costs the same time as "wrong password".
    dummy_hash: Arc<String>,
    /// Argon2 verifications run so far (dummy ones included), for metrics.
    verifications: Arc<std::sync::atomic::AtomicU64>,
    /// Where each hash's time in the queue is recorded.
    wait: metrics::Histogram,
}

impl std::fmt::Debug for PasswordHasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PasswordHasher")
            .field("params", &self.params)
            .field("workers", &self.pool.queue.policy.workers)
            .finish_non_exhaustive()
    }
}

impl PasswordHasher {
    /// A hasher running at most `workers` hashes at once, with at most
    /// `queue` more waiting (a bound on memory; the deadline usually
    /// refuses first).
    pub fn new(cost: HashCost, workers: usize, queue: usize) -> Result<Self, HashError> {
        Self::with_deadline(cost, workers, queue, QUEUE_DEADLINE)
    }

    fn with_deadline(
        cost: HashCost,
        workers: usize,
        queue: usize,
        deadline: Duration,
    ) -> Result<Self, HashError> {
        let params = Params::new(cost.memory_kib, cost.iterations, cost.parallelism, None)
            .map_err(|e| HashError::Internal(format!("invalid Argon2 parameters: {e}")))?;
        let mut random_password = Zeroizing::new([0u8; 32]);
        fill_random(random_password.as_mut()).map_err(|e| HashError::Internal(e.to_string()))?;
        // The dummy hash is also the first measurement of the hash time.
        let started = Instant::now();
        let dummy_hash = hash_blocking(&params, random_password.as_ref())?;
        let policy = Admission {
            workers: workers.max(1),
            max_waiting: queue,
            deadline,
        };
        Ok(Self {
            params,
            pool: Arc::new(HashPool::start(policy, started.elapsed())?),
            dummy_hash: Arc::new(dummy_hash),
            verifications: Arc::new(std::sync::atomic::AtomicU64::new(0)),
            wait: metrics::Histogram::noop(),
        })
    }

    /// The same hasher, recording each hash's time in the queue into `wait`.
    pub fn with_wait_histogram(mut self, wait: metrics::Histogram) -> Self {
        self.wait = wait;
        self
    }

    /// Hashes waiting for a thread and hashes running now.
    pub fn queue_depth(&self) -> (usize, usize) {
        let state = self.pool.queue.lock();
        (state.waiting.len(), state.running)
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
        let (done, result) = tokio::sync::oneshot::channel();
        let (wait, queued) = (self.wait.clone(), Instant::now());
        let job: Job = Box::new(move || {
            // The caller has gone (its request timed out or its client
            // left): hashing for nobody would only delay the callers behind.
            if done.is_closed() {
                return false;
            }
            wait.record(queued.elapsed());
            let _ = done.send(work());
            true
        });
        if let Err(refusal) = self.pool.queue.submit(job) {
            // Asleep, so this refusal costs no CPU while it is held.
            tokio::time::sleep(refusal.hold).await;
            return Err(HashError::Busy {
                retry_after: refusal.retry_after,
            });
        }
        result
            .await
            .map_err(|_| HashError::Internal("hashing worker failed".into()))
    }
}

/// A unit of hashing; answers whether it ran (false: its caller had gone).
type Job = Box<dyn FnOnce() -> bool + Send>;

/// Who gets in line, and what a refused caller is told.
#[derive(Debug, Clone, Copy)]
struct Admission {
    /// Hashes run at once.
    workers: usize,
    /// Hashes allowed to wait.
    max_waiting: usize,
    /// Longest a hash may take, waiting included.
    deadline: Duration,
}

/// Why a caller was not put in line.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Refusal {
    /// Seconds until the work ahead is done, by the measured hash time (≥ 1).
    retry_after: u64,
    /// How long to hold the answer: the same, up to [`MAX_HOLD`].
    hold: Duration,
}

impl Admission {
    /// Admits a new hash with `waiting` hashes in line and `running` on the
    /// workers, each taking `hash_seconds`, or says why not.
    fn check(&self, waiting: usize, running: usize, hash_seconds: f64) -> Result<(), Refusal> {
        let ahead = waiting + running;
        // An idle worker takes it at once, whatever the estimate says.
        if ahead < self.workers {
            return Ok(());
        }
        // Workers take jobs in turns of `workers`: this one starts after
        // every turn ahead of it, then takes a hash time of its own.
        let turns_ahead = (ahead / self.workers) as f64;
        let done_in = (turns_ahead + 1.0) * hash_seconds;
        if waiting < self.max_waiting && done_in <= self.deadline.as_secs_f64() {
            return Ok(());
        }
        // Telling a client when the work ahead will be done spreads the
        // retries of those refused one after another.
        let drain = ahead as f64 / self.workers as f64 * hash_seconds;
        Err(Refusal {
            retry_after: (drain.ceil() as u64).max(1),
            hold: Duration::try_from_secs_f64(drain)
                .unwrap_or(MAX_HOLD)
                .min(MAX_HOLD),
        })
    }
}

/// The hashing threads and their queue; dropping it stops the threads.
struct HashPool {
    queue: Arc<HashQueue>,
}

impl Drop for HashPool {
    fn drop(&mut self) {
        self.queue.lock().closed = true;
        self.queue.ready.notify_all();
    }
}

/// The line in front of the hashing threads.
struct HashQueue {
    state: Mutex<QueueState>,
    /// Signalled when a job is queued (or the pool closes).
    ready: Condvar,
    policy: Admission,
}

struct QueueState {
    /// Admitted jobs, oldest first: served in order of arrival.
    waiting: VecDeque<Job>,
    /// Jobs on a worker now.
    running: usize,
    /// Wall-clock seconds one hash takes on a worker, a moving average: what
    /// the hashing threads really get of the CPU, not what a hash costs alone.
    hash_seconds: f64,
    closed: bool,
}

impl HashPool {
    fn start(policy: Admission, first_hash: Duration) -> Result<Self, HashError> {
        let queue = Arc::new(HashQueue {
            state: Mutex::new(QueueState {
                waiting: VecDeque::new(),
                running: 0,
                hash_seconds: first_hash.as_secs_f64(),
                closed: false,
            }),
            ready: Condvar::new(),
            policy,
        });
        for i in 0..policy.workers {
            let queue = queue.clone();
            std::thread::Builder::new()
                .name(format!("tessera-argon2-{i}"))
                .spawn(move || {
                    lower_priority();
                    queue.work();
                })
                .map_err(|e| HashError::Internal(format!("cannot start a hashing thread: {e}")))?;
        }
        Ok(Self { queue })
    }
}

impl HashQueue {
    fn lock(&self) -> MutexGuard<'_, QueueState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Puts `job` in line, or refuses it.
    fn submit(&self, job: Job) -> Result<(), Refusal> {
        let mut state = self.lock();
        self.policy
            .check(state.waiting.len(), state.running, state.hash_seconds)?;
        state.waiting.push_back(job);
        drop(state);
        self.ready.notify_one();
        Ok(())
    }

    /// A worker's life: take the oldest job, run it, measure it.
    fn work(&self) {
        loop {
            let job = {
                let mut state = self.lock();
                loop {
                    if let Some(job) = state.waiting.pop_front() {
                        state.running += 1;
                        break job;
                    }
                    if state.closed {
                        return;
                    }
                    state = self.ready.wait(state).unwrap_or_else(|p| p.into_inner());
                }
            };
            let started = Instant::now();
            let hashed = job();
            let took = started.elapsed().as_secs_f64();
            let mut state = self.lock();
            state.running = state.running.saturating_sub(1);
            if hashed {
                state.hash_seconds += (took - state.hash_seconds) * SMOOTHING;
            }
        }
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

    /// Occupies the worker of a one-worker hasher until the returned sender
    /// is dropped: the queue's state then changes only by the test's hand.
    async fn hold_the_worker(hasher: &PasswordHasher) -> std::sync::mpsc::Sender<()> {
        let (release, held) = std::sync::mpsc::channel::<()>();
        let submitted = hasher.pool.queue.submit(Box::new(move || {
            let _ = held.recv();
            // Not a hash: keep it out of the measured hash time.
            false
        }));
        assert!(submitted.is_ok());
        until(hasher, |state| {
            state.running == 1 && state.waiting.is_empty()
        })
        .await;
        release
    }

    async fn until(hasher: &PasswordHasher, done: impl Fn(&QueueState) -> bool) {
        while !done(&hasher.pool.queue.lock()) {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }

    #[tokio::test]
    async fn a_full_queue_answers_busy_with_a_retry_after() -> Result<(), HashError> {
        let hasher = PasswordHasher::new(cheap(), 1, 0)?;
        let release = hold_the_worker(&hasher).await;
        let refused = hasher.hash(Zeroizing::new("correct horse".into())).await;
        assert!(
            matches!(refused, Err(HashError::Busy { retry_after }) if retry_after >= 1),
            "{refused:?}"
        );
        drop(release);
        until(&hasher, |state| state.running == 0).await;
        let served = hasher.hash(Zeroizing::new("correct horse".into())).await;
        assert!(served.is_ok(), "{served:?}");
        Ok(())
    }

    #[test]
    fn admission_is_by_deadline_and_the_refused_are_told_when_the_queue_drains() {
        let policy = Admission {
            workers: 2,
            max_waiting: 1_000,
            deadline: Duration::from_secs(10),
        };
        // An idle worker always takes the job, even a slow one.
        assert_eq!(policy.check(0, 1, 60.0), Ok(()));
        // Half a second a hash, two at a time: 38 ahead are 19 turns, then
        // its own, 10 s in all, within the deadline; one more is not.
        assert_eq!(policy.check(36, 2, 0.5), Ok(()));
        assert_eq!(
            policy.check(38, 2, 0.5),
            Err(Refusal {
                retry_after: 10,
                hold: MAX_HOLD
            })
        );
        // Past the bound on waiting hashes, cheap ones are refused too,
        // held only until the queue has drained: 6 ahead, 3 turns of 1/64 s.
        let bounded = Admission {
            max_waiting: 4,
            ..policy
        };
        assert_eq!(bounded.check(3, 2, 1.0 / 64.0), Ok(()));
        assert_eq!(
            bounded.check(4, 2, 1.0 / 64.0),
            Err(Refusal {
                retry_after: 1,
                hold: Duration::from_micros(46_875)
            })
        );
    }

    #[tokio::test]
    async fn the_queue_is_served_in_order_of_arrival() -> Result<(), HashError> {
        let hasher = PasswordHasher::new(cheap(), 1, 16)?;
        let release = hold_the_worker(&hasher).await;
        let order = Arc::new(Mutex::new(Vec::new()));
        let mut callers = Vec::new();
        for i in 0..8 {
            let (hasher2, order) = (hasher.clone(), order.clone());
            callers.push(tokio::spawn(async move {
                hasher2
                    .run(move || order.lock().unwrap_or_else(|p| p.into_inner()).push(i))
                    .await
            }));
            until(&hasher, |state| state.waiting.len() == i + 1).await;
        }
        drop(release);
        for caller in callers {
            caller
                .await
                .map_err(|e| HashError::Internal(e.to_string()))??;
        }
        let order = order.lock().unwrap_or_else(|p| p.into_inner()).clone();
        assert_eq!(order, (0..8).collect::<Vec<_>>());
        Ok(())
    }

    #[tokio::test]
    async fn a_caller_that_has_gone_is_not_hashed() -> Result<(), HashError> {
        let hasher = PasswordHasher::new(cheap(), 1, 16)?;
        let release = hold_the_worker(&hasher).await;
        let gone = {
            let hasher = hasher.clone();
            tokio::spawn(async move { hasher.verify(Zeroizing::new("x".into()), None).await })
        };
        until(&hasher, |state| state.waiting.len() == 1).await;
        gone.abort();
        let _ = gone.await;
        drop(release);
        until(&hasher, |state| {
            state.running == 0 && state.waiting.is_empty()
        })
        .await;
        assert_eq!(
            hasher.verifications(),
            0,
            "hashed for a caller that had gone"
        );
        // The next caller is served as usual.
        hasher.verify(Zeroizing::new("x".into()), None).await?;
        assert_eq!(hasher.verifications(), 1);
        Ok(())
    }

    /// Real Argon2id, cheap enough for a test (about a millisecond).
    fn real_but_cheap() -> HashCost {
        HashCost {
            memory_kib: 1024,
            iterations: 1,
            parallelism: 1,
        }
    }

    /// Clients far beyond the queue of a one-worker hasher, each retrying a
    /// refusal at once (the attack): every one of them is served, and every
    /// refusal says when to come back. Before, refusals were instant, so the
    /// refused spun at normal priority, the hashing thread (niceness 19)
    /// starved and nobody was served; the refusal budget turns that
    /// livelock into a failure.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_flood_far_beyond_the_queue_is_served_not_starved() -> Result<(), HashError> {
        use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
        const CLIENTS: u64 = 64;
        const REFUSAL_BUDGET: u64 = 1_000 * CLIENTS;
        let hasher = PasswordHasher::new(real_but_cheap(), 1, 4)?;
        let refusals = Arc::new(AtomicU64::new(0));
        let without_hint = Arc::new(AtomicU64::new(0));
        let clients: Vec<_> = (0..CLIENTS)
            .map(|_| {
                let hasher = hasher.clone();
                let (refusals, without_hint) = (refusals.clone(), without_hint.clone());
                tokio::spawn(async move {
                    loop {
                        match hasher.verify(Zeroizing::new("x".into()), None).await {
                            Ok(_) => return Ok(true),
                            Err(HashError::Busy { retry_after }) => {
                                if retry_after == 0 {
                                    without_hint.fetch_add(1, Relaxed);
                                }
                                if refusals.fetch_add(1, Relaxed) >= REFUSAL_BUDGET {
                                    return Ok(false);
                                }
                            }
                            Err(e) => return Err(e),
                        }
                    }
                })
            })
            .collect();
        let mut served = 0;
        for client in clients {
            if client
                .await
                .map_err(|e| HashError::Internal(e.to_string()))??
            {
                served += 1;
            }
        }
        let refusals = refusals.load(Relaxed);
        assert_eq!(
            served, CLIENTS,
            "{refusals} refusals: clients retrying at once starved the hashing"
        );
        assert!(
            refusals > 0,
            "the queue never filled: the test proves nothing"
        );
        assert_eq!(
            without_hint.load(Relaxed),
            0,
            "a refusal without Retry-After"
        );
        println!("{CLIENTS} clients served after {refusals} refusals");
        Ok(())
    }
}
