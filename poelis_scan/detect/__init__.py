"""What counts as a key: the grammar, the encodings a key hides in, the engines that
find their needles, and the matches they add up to. Imports nothing above itself."""
