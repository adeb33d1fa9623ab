"""The decide stage: judge the retrained candidates on validation, choose one, verify it on test and the audit."""
