// The text the train page learns from: short, plain and repetitive enough that a tiny model's loss visibly falls
// within a minute on a CPU's WebGPU. Written for this project.
export const TRAIN_TEXT = `\
The lighthouse keeper climbed the stairs every evening. He counted the steps as he went: one hundred
and twelve steps, from the door at the bottom to the lamp at the top. At the top he cleaned the glass, filled
the lamp with oil and lit the wick. Then the light turned, slowly, all night long, and the ships at sea saw it
and kept away from the rocks.

In the morning the keeper put out the lamp and climbed down the stairs. He counted the steps again: one hundred
and twelve steps, from the lamp at the top to the door at the bottom. He made tea, wrote the weather in his
book, and slept until the afternoon.

The weather book was full of short lines. Wind from the west, light rain. Wind from the north, clear sky. Wind
from the east, fog in the morning. Wind from the south, a warm day and a calm sea. Every line began with the
wind, because the wind told the keeper what the sea would do.

One winter the fog came and stayed for a week. The keeper could not see the rocks, and the ships could not see
the light. So he rang the bell as well. He rang it once every minute, all night, and the ships heard the bell
and kept away from the rocks. When the fog lifted he wrote in his book: fog for seven days, the bell rang every
night, no ship came to harm.

Years later a machine turned the light and a motor rang the bell, and the keeper left the lighthouse. He still
climbed a hill every evening to watch the light turn, and he still counted: one, two, three, and the beam came
round again across the water.
`;
