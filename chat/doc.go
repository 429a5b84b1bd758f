// Package chat is the chat domain on top of the persona runtime: messages,
// the priority scorer, and (in the daemon) the responders that let many
// personas share rooms without flooding them.
//
// The scorer starts from the seed's calculatePriority and adds the sender's
// kind and the reply-chain depth. Its defaults keep "urgent" rare: only an
// @mention reaches the inclusive urgent line (0.8), whatever else the score
// holds, so a mentioned persona is woken at once while ordinary chatter
// waits for each persona's own rhythm. SeedWeights reproduces the seed for
// comparison in the simulator. The scorer is safe for concurrent use.
package chat
