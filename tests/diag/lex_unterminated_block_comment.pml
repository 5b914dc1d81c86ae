const D = 4
/* this comment
   never ends
const E = 5
