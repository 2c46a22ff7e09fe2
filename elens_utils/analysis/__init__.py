"""What the chapters compute from profiles: the kNN protocol, candidate sets, interventions, scoring, comparisons."""
