// Package slots schedules model calls onto a backend's concurrent slots.
//
// A local model server (Ollama, llama.cpp, vLLM) answers K requests at
// once; a request beyond K waits inside the server, where nobody chooses
// which one goes next. Package slots makes that choice in the runtime: every
// model call of every persona takes a slot from the backend's Core first,
// and a call that finds the slots full waits in its class.
//
// Ordering. Classes are served strictly in order: Addressed (an @mention, a
// person waiting for this persona) before Human (a reply in a person's
// conversation) before Persona (persona-to-persona) before Background.
// Within a class the slot goes to the waiting call whose persona has
// received the least slot time so far (its virtual time, charged when a
// call ends with the time it held its slot), first come first served among
// equals: the virtual token counter of fair LLM serving. A persona that
// starts waiting after an idle spell is lifted to the least virtual time of
// the personas already waiting or running, so that idling banks no credit
// to burst with later.
//
// Preemption. Core never takes a slot back. Victim names the running call
// a driver may cut short for a waiting Addressed call (the lowest-class
// call that started last, if its class is below Addressed); the driver
// cancels it, and its work goes back to its persona, as a persona's own
// urgent arrival preempts its ordinary work.
//
// Superseded calls. A waiting call whose message was superseded (a newer
// message in the same room that its persona will answer instead) is
// cancelled before it costs a slot: Waiting lists the waiting calls of a
// persona and key, and Cancel removes one.
//
// Full. Core holds every call it is given; it refuses none and drops none.
// A caller that gives up cancels its call.
//
// Concurrency. Core is a pure value with an explicit now and no lock: the
// simulator drives it in virtual time. Scheduler wraps one Core for
// goroutines (Acquire blocks until a slot is granted or the context ends);
// it is what the daemon uses. Test code that uses a Scheduler runs it in a
// synctest bubble.
package slots
