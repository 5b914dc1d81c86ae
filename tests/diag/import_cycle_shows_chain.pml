import "modules/cycle_a"
