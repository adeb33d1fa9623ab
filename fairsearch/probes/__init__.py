"""Probes: could any classifier recover q? The probe registry, the audit's ladder of fresh probes, batched fits, and a certified bound for discrete outputs."""
