//! The step plan: which phases run at a step, how often, and which networks each steps.
//! It comes from `[[train.phases]]`, else the loss's own plan, else `D` × `train.d_steps`
//! then `G`; it is resolved against the architecture's networks once, before step 0.
use lab_plugin_api::architecture::Spec;
use lab_plugin_api::{PhasePlan, PHASE_D, PHASE_G};

/// A phase with its networks resolved.
#[derive(Clone, Debug, PartialEq)]
pub struct Phase {
    pub plan: PhasePlan,
    /// The networks whose optimizers step in it.
    pub networks: Vec<String>,
    /// 0 for `D`, 1 for `G`, 2 + index otherwise: the phase's coordinate in the seeds.
    pub code: u64,
}

/// Resolves `plan` (empty: the default plan) against the architecture's `specs`; an error is
/// `(index of the phase, message)`.
pub fn resolve(plan: &[PhasePlan], specs: &[Spec], architecture: &str) -> Result<Vec<Phase>, (usize, String)> {
    let plan = if plan.is_empty() { PhasePlan::default_plan() } else { plan.to_vec() };
    let declared: Vec<&str> = specs.iter().map(|s| s.name.as_str()).collect();
    let mut phases = Vec::new();
    for (i, p) in plan.iter().enumerate() {
        let networks: Vec<String> = if p.networks.is_empty() {
            specs.iter().filter(|s| s.phases.iter().any(|q| q == &p.name)).map(|s| s.name.clone()).collect()
        } else {
            for n in &p.networks {
                if !declared.contains(&n.as_str()) {
                    return Err((i, format!(
                        "phase `{}` steps network `{n}`, which architecture `{architecture}` does not declare; expected one of: {}",
                        p.name,
                        declared.join(", ")
                    )));
                }
            }
            p.networks.clone()
        };
        if networks.is_empty() {
            return Err((i, format!(
                "phase `{}` steps no network: no network of architecture `{architecture}` lists it (its networks and their phases: {}); name its networks with `networks = [...]`",
                p.name,
                specs.iter().map(|s| format!("{} [{}]", s.name, s.phases.join(", "))).collect::<Vec<_>>().join(", ")
            )));
        }
        let code = match p.name.as_str() {
            PHASE_D => 0,
            PHASE_G => 1,
            _ => 2 + i as u64,
        };
        phases.push(Phase { plan: p.clone(), networks, code });
    }
    Ok(phases)
}

/// The lazy-regularisation ratio of each network: N/(N+1) for the lazy phase with `every = N`
/// that steps it (stylegan2-ada), 1 otherwise.
pub fn lazy_ratio(phases: &[Phase], network: &str) -> f64 {
    phases
        .iter()
        .filter(|p| p.plan.lazy && p.plan.every > 1 && p.networks.iter().any(|n| n == network))
        .map(|p| p.plan.every as f64 / (p.plan.every as f64 + 1.0))
        .next()
        .unwrap_or(1.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn specs() -> Vec<Spec> {
        vec![Spec::new("generator", &["G"]), Spec::new("discriminator", &["D"])]
    }

    #[test]
    fn the_default_plan_steps_d_then_g() {
        let phases = resolve(&[], &specs(), "test").unwrap();
        assert_eq!(
            phases.iter().map(|p| (p.plan.name.as_str(), p.networks.clone(), p.code)).collect::<Vec<_>>(),
            [("D", vec!["discriminator".to_string()], 0), ("G", vec!["generator".to_string()], 1)]
        );
    }

    #[test]
    fn a_lazy_phase_runs_every_n_steps_and_rescales() {
        let reg = PhasePlan { networks: vec!["discriminator".into()], every: 4, lazy: true, ..PhasePlan::new("D_reg") };
        let plan = [PhasePlan::new("D"), reg, PhasePlan::new("G")];
        let phases = resolve(&plan, &specs(), "test").unwrap();
        let runs: Vec<u64> = (0..13).filter(|s| phases[1].plan.runs_at(*s)).collect();
        assert_eq!(runs, [0, 4, 8, 12]);
        assert_eq!(lazy_ratio(&phases, "discriminator"), 0.8);
        assert_eq!(lazy_ratio(&phases, "generator"), 1.0);
    }

    #[test]
    fn wgan_critic_schedule() {
        let d = PhasePlan { repeat: 5, boost_repeat: 100, boost_first: 25, boost_every: 500, ..PhasePlan::new("D") };
        let repeats: Vec<u32> = [0, 24, 25, 499, 500, 501].iter().map(|s| d.repeats_at(*s, 1)).collect();
        assert_eq!(repeats, [100, 100, 5, 5, 100, 5]);
    }

    #[test]
    fn a_phase_naming_an_unknown_network_is_refused() {
        let plan = [PhasePlan { networks: vec!["critic".into()], ..PhasePlan::new("D") }];
        let err = resolve(&plan, &specs(), "toy").unwrap_err();
        assert_eq!(err, (0, "phase `D` steps network `critic`, which architecture `toy` does not declare; expected one of: generator, discriminator".to_string()));
    }
}
