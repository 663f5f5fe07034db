/* stub: to be implemented */
#include "atr_load.h"
