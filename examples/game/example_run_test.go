package game_test

import (
	"context"
	"fmt"
	"time"

	"github.com/personaos/persona/examples/game"
)

// Ten seconds of the default game with each player a persona, then the same board with every player
// thinking on every tick. (Not run as a test: it takes ten seconds of real time; the package's tests
// run it in a testing/synctest bubble instead.)
func ExampleRun() {
	rep, err := game.Run(context.Background(), game.Options{Duration: 10 * time.Second})
	if err != nil {
		panic(err)
	}
	p, b := rep.Persona, rep.Baseline
	fmt.Printf("score %d vs %d, reaction p95 %d vs %d ticks, wake-ups %.1f vs %.0f a second\n",
		p.Total, b.Total, p.ReactP95, b.ReactP95, p.WakesPerSec, b.WakesPerSec)
}
