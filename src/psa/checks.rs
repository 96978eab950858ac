//! Which check runs on which pod: the dispatch from a [`Check`] to its function, with the
//! exemptions PSA makes (Windows pods, pods in a user namespace) and the baseline checks PSA
//! drops where their `restricted` override is exempt.

mod baseline;
mod restricted;

use super::Check;
use super::pod::Pod;

impl Pod<'_> {
    /// The violation message of `check`, `None` when the pod passes it.
    pub(super) fn evaluate(&self, check: Check) -> Option<String> {
        match check {
            Check::HostNamespaces => self.host_namespaces(),
            Check::Privileged => self.privileged(),
            // Overridden in PSA by capabilities_restricted, which exempts Windows pods.
            Check::CapabilitiesBaseline if self.windows => None,
            Check::CapabilitiesBaseline => self.capabilities_baseline(),
            Check::HostPathVolumes => self.host_path_volumes(),
            Check::HostPorts => self.host_ports(),
            Check::AppArmorProfile => self.app_armor_profile(),
            Check::SeLinuxOptions => self.se_linux_options(),
            Check::ProcMount => self.proc_mount(),
            // Overridden in PSA by seccompProfile_restricted, which exempts Windows pods.
            Check::SeccompProfileBaseline if self.windows => None,
            Check::SeccompProfileBaseline => self.seccomp_profile_baseline(),
            Check::Sysctls => self.sysctls(),
            Check::WindowsHostProcess => self.windows_host_process(),
            Check::HostProbesAndHostLifecycle => self.host_probes_and_host_lifecycle(),
            Check::RestrictedVolumes => self.restricted_volumes(),
            Check::AllowPrivilegeEscalation if self.windows => None,
            Check::AllowPrivilegeEscalation => self.allow_privilege_escalation(),
            Check::RunAsNonRoot if self.user_namespace => None,
            Check::RunAsNonRoot => self.run_as_non_root(),
            Check::RunAsUser if self.user_namespace => None,
            Check::RunAsUser => self.run_as_user(),
            Check::SeccompProfileRestricted if self.windows => None,
            Check::SeccompProfileRestricted => self.seccomp_profile_restricted(),
            Check::CapabilitiesRestricted if self.windows => None,
            Check::CapabilitiesRestricted => self.capabilities_restricted(),
        }
    }
}
