"""The HR screens: compose, schedule, approve, follow up."""
