const HUGE = 1e999
