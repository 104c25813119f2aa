package dicomprobe

import "github.com/pacswatch/pacswatch/internal/probe"

// caveatsConsistent returns what is inconsistent between e's counts and its caveats (SPEC
// "Result record"), or "": an exact count is not capped; an estimate says so; a count that is not
// exact says why.
func caveatsConsistent(e *probe.Exposure) string {
	switch {
	case e.StudiesExact && e.HasCaveat(probe.CaveatCapped):
		return "studies_exact with a capped caveat"
	case (e.InstancesSource == probe.InstancesSourceEstimate) != e.HasCaveat(probe.CaveatEstimate):
		return "instances_source and the estimate caveat disagree"
	case !e.StudiesExact && e.Level >= probe.LevelQuery && !e.HasCaveat(probe.CaveatCapped) && !e.HasCaveat(probe.CaveatImplausible):
		return "a count that is not exact, with no caveat saying why"
	}
	return ""
}
