/* stub: to be implemented */
#include "atr_capability.h"
