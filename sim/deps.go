package sim

// Dependency barriers: a dependent persona is handed a message only after its prerequisites finished it.

// stageStart gives persona p, if others wait for it, its deadline for mi:
// sources from the message's arrival, dependents from their release.
func (r *run) stageStart(mi, p int32) {
	if len(r.dependents[p]) > 0 {
		r.at(r.now+int64(r.sc.DepsTimeout), evDepTimeout, mi, p)
	}
}

// depFinish reports a stage's final account to its dependents' barriers:
// handled is done, declined skipped, expired incomplete (pipeline.go).
func (r *run) depFinish(di int32, ac acct) {
	d := &r.dels[di]
	if d.flags&fDepDone != 0 {
		return
	}
	d.flags |= fDepDone
	if len(r.dependents[d.persona]) == 0 {
		return
	}
	status := uint16(0)
	switch ac {
	case acDeclined:
		status = fSkipped
	case acExpired:
		status = fIncomplete
	}
	r.depReport(d.msg, d.persona, status)
}

// depTimeout: a stage that has not finished by its deadline counts as
// timed out, and its dependents' inputs are incomplete.
func (r *run) depTimeout(mi, s int32) {
	di := r.delOf(mi, s)
	if di < 0 || r.dels[di].flags&fDepDone != 0 {
		return
	}
	r.dels[di].flags |= fDepDone
	r.depReport(mi, s, fIncomplete)
}

func (r *run) depReport(mi, s int32, status uint16) {
	for _, x := range r.dependents[s] {
		xi := r.delOf(mi, x)
		if xi < 0 || r.dels[xi].flags&fHeld == 0 {
			continue
		}
		r.dels[xi].flags |= status
		r.dels[xi].waitLeft--
		if r.dels[xi].waitLeft == 0 {
			r.release(xi)
		}
	}
}

// release hands a held delivery to its persona, whatever its status (as
// the runtime's pipeline does; the status travels with the item).
func (r *run) release(di int32) {
	d := &r.dels[di]
	d.flags &^= fHeld
	r.m.releases++
	switch {
	case d.flags&fIncomplete != 0:
		r.m.incomplete++
	case d.flags&fSkipped != 0:
		r.m.skipped++
	}
	r.stageStart(d.msg, d.persona)
	r.oursPush(di)
}

// checkBarrier counts a dependent started on an item before every
// prerequisite finished it or timed out: never, by construction; the
// report shows it so a regression cannot hide.
func (r *run) checkBarrier(di int32) {
	d := &r.dels[di]
	for _, s := range r.prereqs[d.persona] {
		if si := r.delOf(d.msg, s); si >= 0 && r.dels[si].flags&fDepDone == 0 {
			r.m.depViolations++
			return
		}
	}
}
