//go:build !unix

package main

import (
	"os"
	"os/exec"
)

// ownProcessGroup does nothing where there are no process groups.
func ownProcessGroup(*exec.Cmd) {}

// signalGroup signals p alone; os.Kill is the only signal that works
// everywhere, so any other one kills it too.
func signalGroup(p *os.Process, sig os.Signal) error {
	if err := p.Signal(sig); err != nil {
		return p.Kill()
	}
	return nil
}

// exitStatus is the exit code of a finished process.
func exitStatus(ps *os.ProcessState) int { return ps.ExitCode() }
