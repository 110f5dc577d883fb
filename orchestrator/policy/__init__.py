"""Rules over plans: the guard's rules, the firewall's, and the policies a manifest declares."""
