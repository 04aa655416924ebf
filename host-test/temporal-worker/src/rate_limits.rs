//! Temporal's own limits on how fast activities start, as flags.
//!
//! Cloudflare's rate limit is one budget for every worker of a fleet, and
//! these are the engine's ways of keeping a fleet inside it: the server
//! paces a whole task queue, the SDK paces one worker. Both count
//! activities, not the API calls each makes, so they are sized from the
//! calls per task (docs/cloudflare-api.md, "Sizing a fleet to the rate limit").

use clap::Args;

/// How many activities a second may start; each `None` is unlimited.
#[derive(Args, Debug, Clone, Copy, Default, PartialEq)]
pub struct ActivityRateLimits {
    /// Most activities a second the server hands out on the whole task
    /// queue, to every worker together (a fraction such as 0.5 is allowed).
    /// The last worker to poll sets it for the queue, so give every worker
    /// of a queue the same value. Unlimited when not given.
    #[arg(
        long = "max-task-queue-activities-per-second",
        value_name = "PER_SECOND",
        value_parser = per_second
    )]
    pub task_queue_per_second: Option<f64>,
    /// Most activities a second this worker starts, whatever the others
    /// do (a fraction such as 0.5 is allowed). Unlimited when not given.
    #[arg(
        long = "max-activities-per-second",
        value_name = "PER_SECOND",
        value_parser = per_second
    )]
    pub worker_per_second: Option<f64>,
}

impl ActivityRateLimits {
    /// The limits in words for the worker's start-up line, or `None` when
    /// neither is set.
    pub fn describe(&self) -> Option<String> {
        let parts: Vec<String> = [
            (self.task_queue_per_second, "the task queue"),
            (self.worker_per_second, "this worker"),
        ]
        .into_iter()
        .filter_map(|(limit, whose)| limit.map(|per_second| format!("{per_second}/s for {whose}")))
        .collect();
        (!parts.is_empty()).then(|| format!("at most {}", parts.join(" and ")))
    }
}

/// A rate as the flags take it: a number of activities a second above 0.
/// The SDK refuses zero, negative, infinite and not-a-number rates when the
/// worker is built; refusing them here names the flag instead.
fn per_second(text: &str) -> Result<f64, String> {
    match text.trim().parse::<f64>() {
        Ok(rate) if rate.is_normal() && rate > 0.0 => Ok(rate),
        _ => Err("expected a number of activities a second above 0, such as 0.5 or 3".to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rate_is_a_positive_finite_number() {
        assert_eq!(per_second("3"), Ok(3.0));
        assert_eq!(per_second("0.5"), Ok(0.5));
        for refused in ["0", "-1", "NaN", "inf", "1e-320", "", "three", "3/s"] {
            assert!(per_second(refused).is_err(), "{refused:?} was taken");
        }
    }

    #[test]
    fn the_start_up_line_names_each_limit_set() {
        assert_eq!(ActivityRateLimits::default().describe(), None);
        let both = ActivityRateLimits {
            task_queue_per_second: Some(3.0),
            worker_per_second: Some(0.5),
        };
        assert_eq!(
            both.describe().as_deref(),
            Some("at most 3/s for the task queue and 0.5/s for this worker")
        );
    }
}
