# A name with non-ASCII letters is one error, and checking goes on after it.
const größe = 4
const width = größe * unknown_name
