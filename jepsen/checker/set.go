package checker

import (
	"fmt"
	"sort"

	"github.com/statenode/statenode/jepsen/history"
)

// Set checks a set history: unique adds and a final read. Every
// acknowledged add must be in the final read (else it was lost); every
// element read must have been added by an ok or indeterminate add (else it
// appeared from nowhere, or an add reported as failed took effect). Without
// an ok final read the check fails: an idle run proves nothing.
func Set(ops []history.Op) Result {
	res := Result{Name: "set"}
	adds := map[string]string{} // value → type
	var final *history.Op
	for i := range ops {
		o := &ops[i]
		switch o.F {
		case history.FAdd:
			res.Ops++
			if prev, ok := adds[o.Value]; ok && prev == history.TypeOK {
				continue
			}
			adds[o.Value] = o.Type
		case history.FRead:
			if o.Type == history.TypeOK && (final == nil || o.Call >= final.Call) {
				final = o
			}
		}
	}
	if final == nil {
		res.Anomalies = append(res.Anomalies, "no successful final read")
		res.Summary = "no final read"
		return res
	}
	read := map[string]bool{}
	for _, v := range final.Values {
		read[v] = true
	}
	var lost, unexpected, failedButPresent []string
	okAdds, recovered := 0, 0
	for v, t := range adds {
		switch t {
		case history.TypeOK:
			okAdds++
			if !read[v] {
				lost = append(lost, v)
			}
		case history.TypeInfo:
			if read[v] {
				recovered++
			}
		case history.TypeFail:
			if read[v] {
				failedButPresent = append(failedButPresent, v)
			}
		}
	}
	for v := range read {
		if _, ok := adds[v]; !ok {
			unexpected = append(unexpected, v)
		}
	}
	sort.Strings(lost)
	sort.Strings(unexpected)
	sort.Strings(failedButPresent)
	for _, v := range lost {
		res.Anomalies = append(res.Anomalies, fmt.Sprintf("lost: acknowledged add %s missing from the final read", v))
	}
	for _, v := range unexpected {
		res.Anomalies = append(res.Anomalies, fmt.Sprintf("unexpected: %s read but never added", v))
	}
	for _, v := range failedButPresent {
		res.Anomalies = append(res.Anomalies, fmt.Sprintf("failed add present: %s was reported as not applied", v))
	}
	res.Valid = len(res.Anomalies) == 0
	res.Summary = fmt.Sprintf("%d acknowledged adds, %d lost, %d unexpected, %d indeterminate recovered, final read of %d",
		okAdds, len(lost), len(unexpected), recovered, len(final.Values))
	return res
}
