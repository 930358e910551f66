//! A bounded pool of scoped threads over a list of items: what pushes (blobs of many
//! images, attachments of many subjects) and `rko build`'s per-platform Go builds share.

use std::sync::Mutex;

use anyhow::Result;

/// Runs `f` on every item, `jobs` at a time, in item order taken from a shared queue;
/// stops starting new items at the first error and returns it. Results are in item order.
pub fn pool<T: Sync, R: Send>(
    jobs: usize,
    items: &[T],
    f: impl Fn(&T) -> Result<R> + Sync,
) -> Result<Vec<R>> {
    let next = Mutex::new(0usize);
    let results: Mutex<Vec<Option<R>>> = Mutex::new(items.iter().map(|_| None).collect());
    let first_error: Mutex<Option<anyhow::Error>> = Mutex::new(None);
    std::thread::scope(|s| {
        for _ in 0..jobs.clamp(1, items.len().max(1)) {
            s.spawn(|| {
                while first_error.lock().expect("lock").is_none() {
                    let i = {
                        let mut n = next.lock().expect("lock");
                        *n += 1;
                        *n - 1
                    };
                    let Some(item) = items.get(i) else { return };
                    match f(item) {
                        Ok(r) => results.lock().expect("lock")[i] = Some(r),
                        Err(e) => {
                            first_error.lock().expect("lock").get_or_insert(e);
                        }
                    }
                }
            });
        }
    });
    if let Some(e) = first_error.into_inner().expect("lock") {
        return Err(e);
    }
    Ok(results
        .into_inner()
        .expect("lock")
        .into_iter()
        .map(|r| r.expect("every item ran"))
        .collect())
}
